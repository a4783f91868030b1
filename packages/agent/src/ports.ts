// Pod ports. The process runtime shares the node's network, so two pods of one app on one node
// cannot both listen on their declared containerPort. The agent gives each declared container
// port of each pod a port of its own on the node's address, from a range (default
// 20000-29999, below Linux's ephemeral ports), tells the container in PORT / PORT_<NAME>, and
// reports the assignment in status.portMappings so that Endpoints carry it.
import { createServer } from 'node:net';
import type { Pod, PortMapping } from '@flotilla/api';

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export const DEFAULT_POD_PORTS: PortRange = { from: 20000, to: 29999 };

export class PortAllocator {
  /** Port → the pod uid holding it. */
  private readonly held = new Map<number, string>();
  private next: number;

  constructor(
    private readonly address: string,
    private readonly range: PortRange = DEFAULT_POD_PORTS,
  ) {
    this.next = range.from;
  }

  /**
   * The ports of a pod: the ones it had (status.portMappings, e.g. before an agent restart)
   * unless another pod holds them, new ones for the rest.
   */
  async assign(pod: Pod): Promise<PortMapping[]> {
    const uid = pod.metadata.uid ?? '';
    const before = pod.status?.portMappings ?? [];
    const out: PortMapping[] = [];
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        const protocol = p.protocol ?? 'TCP';
        const had = before.find((m) => m.containerName === c.name && m.containerPort === p.containerPort && (m.protocol ?? 'TCP') === protocol);
        let hostPort: number | undefined;
        // A port the pod had stays its own unless another pod here holds it: after an agent
        // restart its process may still be listening there (so it does not look free).
        if (had !== undefined && (this.held.get(had.hostPort) ?? uid) === uid) hostPort = had.hostPort;
        hostPort ??= await this.take();
        this.held.set(hostPort, uid);
        out.push({ containerName: c.name, ...(p.name === undefined ? {} : { name: p.name }), containerPort: p.containerPort, protocol, hostPort });
      }
    }
    return out;
  }

  /** Gives back every port of a pod. */
  release(uid: string): void {
    for (const [port, holder] of this.held) if (holder === uid) this.held.delete(port);
  }

  private async take(): Promise<number> {
    const size = this.range.to - this.range.from + 1;
    for (let i = 0; i < size; i++) {
      const port = this.next;
      this.next = port >= this.range.to ? this.range.from : port + 1;
      if (this.held.has(port)) continue;
      if (await this.free(port)) return port;
    }
    throw new Error(`no free port left in ${this.range.from}-${this.range.to} on ${this.address}: widen the worker's podPorts range`);
  }

  /** Whether nothing listens on the port at the node's address now. */
  private free(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen({ port, host: this.address, exclusive: true }, () => server.close(() => resolve(true)));
    });
  }
}

/** PORT_<NAME> for a named port: upper case, with every character that is not A-Z0-9 as _. */
export function portEnvName(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

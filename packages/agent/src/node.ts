// The agent's Node and Lease: registration with the machine's real capacity (minus a reserve)
// as allocatable, labels, taints and the node's address; a Lease renewed every second in
// kube-node-lease (the node lifecycle controller on the leader watches it); and the Node's
// Ready condition, which the agent sets True again whenever it finds it otherwise (the
// controller marks it Unknown when the Lease went silent).
import { availableParallelism, hostname, totalmem } from 'node:os';
import { ApiError, formatBytes, formatCpu, parseQuantity, timestamp, type ApiClient, type Lease, type Node, type NodeCondition, type Taint } from '@flotilla/api';
import type { Logger } from '@flotilla/wire';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
export const AGENT_VERSION = 'flotilla-agent/0.1.0';

export interface NodeConfig {
  readonly name: string;
  /** The node's address (where its pods listen and its proxy accepts). */
  readonly address: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly taints?: readonly Taint[];
  /** Kept back from capacity for the agent and the system (default cpu 100m, memory 256Mi). */
  readonly reserve?: { readonly cpu?: string; readonly memory?: string };
  /** Pods the node accepts (default 110, as the kubelet). */
  readonly maxPods?: number;
  /** What the runtime says about CPU and memory limits. */
  readonly limits: { readonly enforced: boolean; readonly note: string };
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

/** The Node object this agent registers (status included). */
export function nodeObject(config: NodeConfig, now = Date.now()): Node {
  const cpu = availableParallelism();
  const memory = totalmem();
  const reserveCpu = parseQuantity(config.reserve?.cpu ?? '100m');
  const reserveMemory = parseQuantity(config.reserve?.memory ?? '256Mi');
  const pods = String(config.maxPods ?? 110);
  const capacity = { cpu: formatCpu(cpu), memory: formatBytes(Math.floor(memory / 1024) * 1024), pods };
  const allocatable = { cpu: formatCpu(Math.max(0, cpu - reserveCpu)), memory: formatBytes(Math.max(0, Math.floor((memory - reserveMemory) / 1024) * 1024)), pods };
  const arch = ARCH[process.arch] ?? process.arch;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: config.name,
      labels: { 'kubernetes.io/hostname': config.name, 'kubernetes.io/os': process.platform, 'kubernetes.io/arch': arch, ...config.labels },
      annotations: { 'flotilla.io/limits-enforced': String(config.limits.enforced), 'flotilla.io/limits': config.limits.note },
    },
    spec: config.taints === undefined || config.taints.length === 0 ? {} : { taints: config.taints.map((t) => ({ ...t })) },
    status: {
      capacity,
      allocatable,
      conditions: [readyCondition(now, now)],
      addresses: [
        { type: 'InternalIP', address: config.address },
        { type: 'Hostname', address: hostname() },
      ],
      nodeInfo: { kubeletVersion: AGENT_VERSION, operatingSystem: process.platform, architecture: arch },
    },
  };
}

function readyCondition(now: number, since: number): NodeCondition {
  return { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'flotilla agent is posting ready status', lastHeartbeatTime: timestamp(now), lastTransitionTime: timestamp(since) };
}

/**
 * Registers the Node: creates it, or (it exists: the agent restarted, or the node joins again)
 * updates its labels, annotations and status. Taints are set only when the Node is created, as
 * the kubelet's --register-with-taints: afterwards they belong to the cluster (the node
 * lifecycle controller and the operator change them).
 */
export async function registerNode(api: ApiClient, config: NodeConfig): Promise<Node> {
  const wanted = nodeObject(config);
  try {
    return await api.create<Node>('nodes', wanted);
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
  }
  await api.patch('nodes', undefined, config.name, { metadata: { labels: wanted.metadata.labels, annotations: wanted.metadata.annotations } });
  return api.patch<Node>('nodes', undefined, config.name, { status: wanted.status }, 'merge', 'status');
}

/** Sets the Node's Ready condition to True (keeping the other conditions) if it is not. */
export async function ensureReady(api: ApiClient, node: Node): Promise<void> {
  const conditions = node.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return;
  const now = Date.now();
  const next = [...conditions.filter((c) => c.type !== 'Ready'), readyCondition(now, now)];
  await api.patch('nodes', undefined, node.metadata.name ?? '', { status: { conditions: next } }, 'merge', 'status');
}

/** Renews the node's Lease every `periodMs`, creating it when missing. */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private failing = false;

  constructor(
    private readonly api: ApiClient,
    private readonly node: string,
    private readonly logger: Logger,
    private readonly periodMs = 1000,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    void this.renew();
    this.timer = setInterval(() => void this.renew(), this.periodMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async renew(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const now = new Date().toISOString(); // a MicroTime: every renewal is a new value
    try {
      try {
        await this.api.patch('leases', NODE_LEASE_NAMESPACE, this.node, { spec: { holderIdentity: this.node, renewTime: now } });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
        const lease: Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.node, namespace: NODE_LEASE_NAMESPACE }, spec: { holderIdentity: this.node, leaseDurationSeconds: 40, acquireTime: now, renewTime: now } };
        await this.api.create('leases', lease);
      }
      if (this.failing) this.logger.info({}, 'renewing the node lease again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn({ err: (err as Error).message }, 'could not renew the node lease; trying every second');
      this.failing = true;
    } finally {
      this.busy = false;
    }
  }
}

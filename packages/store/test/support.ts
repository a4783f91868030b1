// In-process clusters of real StoreNodes: real sockets on loopback, real level databases in
// temporary directories.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, silentLogger } from '@flotilla/wire';
import { KvClient, KvServer, StoreNode, type StoreOptions } from '@flotilla/store';

export const SECRET = 'store-test-secret';

export { freePort };

export interface Member {
  readonly id: string;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly dataDir: string;
  node: StoreNode | undefined;
  server: KvServer | undefined;
}

export class TestCluster {
  readonly members = new Map<string, Member>();
  private readonly root = mkdtempSync(join(tmpdir(), 'flotilla-store-'));
  private readonly clients: KvClient[] = [];

  private constructor(private readonly overrides: Partial<StoreOptions>) {}

  static async start(ids: readonly string[], overrides: Partial<StoreOptions> = {}): Promise<TestCluster> {
    const c = new TestCluster(overrides);
    for (const id of ids) await c.define(id);
    await Promise.all(ids.map((id) => c.startMember(id)));
    return c;
  }

  async define(id: string): Promise<Member> {
    const m: Member = { id, peerPort: await freePort(), clientPort: await freePort(), dataDir: join(this.root, id), node: undefined, server: undefined };
    this.members.set(id, m);
    return m;
  }

  peerUrl(id: string): string {
    return `ws://127.0.0.1:${this.members.get(id)!.peerPort}/raft`;
  }

  /** Starts (or restarts) one master; `join` starts it empty, to be added by the cluster. */
  async startMember(id: string, extra: Partial<StoreOptions> = {}): Promise<StoreNode> {
    const m = this.members.get(id)!;
    const founders = [...this.members.keys()].filter((x) => this.overrides.founders?.includes(x) ?? true);
    m.node = await StoreNode.open({
      id,
      members: [...this.members.values()].map((x) => ({ id: x.id, peerUrl: this.peerUrl(x.id) })),
      founders,
      peerListen: { host: '127.0.0.1', port: m.peerPort },
      dataDir: m.dataDir,
      secret: SECRET,
      logger: silentLogger,
      tickMs: 20,
      electionTicks: 10,
      heartbeatTicks: 1,
      ...this.overrides,
      ...extra,
    });
    m.server = await KvServer.start(m.node, { host: '127.0.0.1', port: m.clientPort, secret: SECRET, logger: silentLogger });
    return m.node;
  }

  /** Stops one master (as a crash would, minus the torn write: the process is gone). */
  async stopMember(id: string): Promise<void> {
    const m = this.members.get(id)!;
    await m.server?.close();
    await m.node?.close();
    m.node = undefined;
    m.server = undefined;
  }

  node(id: string): StoreNode {
    const n = this.members.get(id)?.node;
    if (n === undefined) throw new Error(`${id} is not running`);
    return n;
  }

  running(): StoreNode[] {
    return [...this.members.values()].flatMap((m) => (m.node === undefined ? [] : [m.node]));
  }

  client(options: { timeoutMs?: number } = {}): KvClient {
    const c = new KvClient({ endpoints: [...this.members.values()].map((m) => `ws://127.0.0.1:${m.clientPort}`), secret: SECRET, ...options });
    this.clients.push(c);
    return c;
  }

  /** Waits until some running master leads and the others follow it. */
  async leader(timeoutMs = 5000): Promise<StoreNode> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leaders = this.running().filter((n) => n.status().role === 'leader');
      if (leaders.length === 1) return leaders[0]!;
      if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Waits until every running master has applied the same log. */
  async converged(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.running().map((n) => n.status());
      if (s.every((x) => x.appliedIndex === s[0]!.appliedIndex && x.appliedHash === s[0]!.appliedHash)) return;
      if (Date.now() > deadline) throw new Error(`masters did not converge: ${JSON.stringify(s.map((x) => [x.name, x.appliedIndex]))}`);
      await sleep(10);
    }
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all([...this.members.keys()].map((id) => this.stopMember(id)));
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

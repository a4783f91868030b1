// In-process clusters of real StoreNodes: real sockets on loopback, real level databases in
// temporary directories.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
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
  startMember(id: string, extra: Partial<StoreOptions> = {}): Promise<StoreNode> {
    // Remembered until it settles: a test that fails while others are still starting (say,
    // Promise.all over three starts, one refused) must not stop the cluster before they end,
    // or they finish afterwards and keep the test process alive.
    const started = this.open(id, extra);
    const pending = started.catch(() => undefined);
    this.starting.set(id, pending);
    void pending.then(() => {
      if (this.starting.get(id) === pending) this.starting.delete(id);
    });
    return started;
  }

  private readonly starting = new Map<string, Promise<unknown>>();

  private async open(id: string, extra: Partial<StoreOptions>): Promise<StoreNode> {
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
    await this.starting.get(id);
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
      // Raft's view and the host's (which membership changes check) must both say so.
      const leaders = this.running().filter((n) => n.status().role === 'leader' && n.leadership().isLeader);
      if (leaders.length === 1) return leaders[0]!;
      if (Date.now() > deadline) throw new Error(`no single leader within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Waits until every running master has applied the same log, and serves. */
  async converged(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.running().map((n) => n.status());
      if (s.every((x) => x.serving && x.appliedIndex === s[0]!.appliedIndex && x.appliedHash === s[0]!.appliedHash)) return;
      if (Date.now() > deadline) throw new Error(`masters did not converge: ${JSON.stringify(s.map((x) => [x.name, x.appliedIndex, x.serving ? 'serving' : x.notServing]))}`);
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

/** The files of a master's level database with the given extension, largest first. */
export function raftFiles(dataDir: string, ext: string): string[] {
  const dir = join(dataDir, 'raft');
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
}

/** A value that compresses badly, so its bytes appear as they are in LevelDB's table files. */
export function incompressible(i: number): string {
  return `value-${BigInt(`0x${createHash('sha256').update(String(i)).digest('hex')}`).toString(36).slice(0, 40)}`;
}

/** Reads `key` through every running master that serves; fails if any answers differently from `expected`. */
export async function everyAnswer(c: TestCluster, key: string): Promise<Map<string, string | undefined | Error>> {
  const out = new Map<string, string | undefined | Error>();
  for (const n of c.running()) {
    try {
      const r = await n.range({ key });
      out.set(n.id, r.kvs[0] === undefined ? undefined : dec(r.kvs[0].value));
    } catch (err) {
      out.set(n.id, err as Error);
    }
  }
  return out;
}

/**
 * What an operator does for a master whose data is lost or damaged: remove it, start it with
 * an empty data directory as a joining member, add it back as a learner, promote it.
 */
export async function reAdd(c: TestCluster, id: string, extra: Partial<StoreOptions> = {}): Promise<StoreNode> {
  await c.stopMember(id);
  await (await c.leader()).removeMember(id);
  rmSync(c.members.get(id)!.dataDir, { recursive: true, force: true });
  const starting = c.startMember(id, { ...extra, join: true });
  await (await c.leader()).addLearner(id, { peerUrl: c.peerUrl(id) });
  const node = await starting;
  await (await c.leader()).promote(id);
  return node;
}

/** A logger that keeps the warnings a master logs (for tests of what it refused). */
export function warnings(): { said: string[]; logger: StoreOptions['logger'] } {
  const said: string[] = [];
  const logger = { info: () => undefined, debug: () => undefined, error: () => undefined, warn: (_f: object, msg: string) => void said.push(msg), child: () => logger };
  return { said, logger: logger as unknown as StoreOptions['logger'] };
}

// A hand-driven cluster for paper tests: messages are delivered only when a test says so,
// so each test can stage exactly the situation a rule of the paper talks about.
import {
  MemoryStorage,
  RaftError,
  RawNode,
  SeededRandom,
  type Entry,
  type Message,
  type RaftConfig,
  type RaftErrorCode,
  type ReadState,
  type Ready,
  type Snapshot,
} from '@flotilla/raft';
import { Raft } from '@flotilla/raft/testing';

export const ELECTION = 10;
export const HEARTBEAT = 1;

export type Overrides = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

export class TestNode {
  readonly raw: RawNode;
  core!: Raft;
  /** Every entry this node's host applied, in order. */
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];
  readonly readies: Ready[] = [];
  /** Snapshot data the host installed last. */
  installed: Snapshot | undefined;

  constructor(
    readonly id: string,
    readonly storage: MemoryStorage,
    readonly overrides: Overrides = {},
    seed = 1,
    createRaft: (c: RaftConfig) => Raft = (c) => new Raft(c),
  ) {
    this.raw = new RawNode(
      {
        id,
        storage,
        random: new SeededRandom(seed),
        electionTick: ELECTION,
        heartbeatTick: HEARTBEAT,
        preVote: false,
        checkQuorum: false,
        ...overrides,
      },
      (c) => (this.core = createRaft(c)),
    );
  }

  /** Runs the host loop until there is nothing left to do; returns the messages to send. */
  flush(): Message[] {
    const out: Message[] = [];
    while (this.raw.hasReady()) {
      const rd = this.raw.ready();
      this.readies.push(rd);
      if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
      this.storage.append(rd.entries);
      if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
      out.push(...rd.messages);
      if (rd.snapshot !== undefined) this.installed = rd.snapshot;
      this.applied.push(...rd.committedEntries);
      this.readStates.push(...rd.readStates);
      this.raw.advance();
    }
    return out;
  }

  get term(): number {
    return this.core.term;
  }
  get role() {
    return this.core.role;
  }
  get commit(): number {
    return this.core.log.committed;
  }
  get lastIndex(): number {
    return this.core.log.lastIndex();
  }
  /** Terms of the log from firstIndex, for comparing logs. */
  terms(): number[] {
    const log = this.core.log;
    return log.slice(log.firstIndex(), log.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => e.term);
  }
  appliedValues(): string[] {
    return this.applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0).map((e) => text(e));
  }
}

export function text(e: Entry): string {
  return e.type === 'normal' ? new TextDecoder().decode(e.data) : `${e.change.type}(${e.change.nodeId})`;
}

/** The RaftError `fn` throws (code and named leader), or undefined when it does not throw. */
export function refusal(fn: () => unknown): { code: RaftErrorCode; leader: string | undefined } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof RaftError) return { code: err.code, leader: err.leader };
    throw err;
  }
  return undefined;
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Storage holding a given log (terms of entries 1..n) and hard state, as after a crash. */
export function storageWithLog(voters: readonly string[], terms: readonly number[], hard?: { term: number; vote?: string; commit?: number }): MemoryStorage {
  const storage = MemoryStorage.bootstrap(voters);
  const start = voters.length + 1;
  storage.append(terms.map((term, i) => ({ index: start + i, term, type: 'normal', data: bytes(`t${term}i${start + i}`) })));
  const lastTerm = terms[terms.length - 1] ?? 1;
  storage.setHardState({ term: hard?.term ?? lastTerm, vote: hard?.vote ?? '', commit: hard?.commit ?? voters.length });
  return storage;
}

type Filter = (m: Message) => boolean;

/**
 * A cluster whose network is the test itself: `deliver` runs message exchanges to
 * quiescence, applying `drop` filters; `pending` holds what was not delivered yet.
 */
export class TestNet {
  readonly nodes = new Map<string, TestNode>();
  private filters: Filter[] = [];
  /** Every message sent, in order, for tests that count traffic. */
  readonly sent: Message[] = [];

  constructor(nodes: readonly TestNode[]) {
    for (const n of nodes) this.nodes.set(n.id, n);
    for (const n of nodes) n.flush();
  }

  /** A new cluster of founding voters `ids`, each with its own seed. */
  static create(ids: readonly string[], overrides: Overrides = {}, createRaft?: (c: RaftConfig) => Raft): TestNet {
    return new TestNet(ids.map((id, i) => new TestNode(id, MemoryStorage.bootstrap(ids), overrides, i + 1, createRaft)));
  }

  /** Adds a node (e.g. one joining with empty storage). */
  add(node: TestNode): void {
    this.nodes.set(node.id, node);
    node.flush();
  }

  /** Replaces a node's process with a fresh one over the same storage (crash and restart). */
  restart(id: string, overrides: Overrides = {}): TestNode {
    const old = this.node(id);
    const fresh = new TestNode(id, old.storage, { ...old.overrides, ...overrides }, 1000 + this.restarts++);
    this.nodes.set(id, fresh);
    fresh.flush();
    return fresh;
  }
  private restarts = 0;

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Drops messages matching `filter` until `heal()`. */
  drop(filter: Filter): void {
    this.filters.push(filter);
  }

  isolate(id: string): void {
    this.drop((m) => m.from === id || m.to === id);
  }

  cut(a: string, b: string): void {
    this.drop((m) => (m.from === a && m.to === b) || (m.from === b && m.to === a));
  }

  heal(): void {
    this.filters = [];
  }

  /** Delivers messages (and everything they cause) until nothing is left in flight. */
  deliver(messages: Message[]): void {
    const queue = [...messages];
    for (let guard = 0; queue.length > 0; guard++) {
      if (guard > 100_000) throw new Error('message storm: exchange did not settle');
      const m = queue.shift()!;
      this.sent.push(m);
      if (this.filters.some((f) => f(m))) continue;
      const target = this.nodes.get(m.to);
      if (target === undefined) continue;
      target.raw.step(m);
      queue.push(...target.flush());
    }
  }

  /** Flushes every node and delivers what they send. */
  settle(): void {
    for (const n of this.nodes.values()) this.deliver(n.flush());
  }

  tick(id: string, times = 1): void {
    const n = this.node(id);
    for (let i = 0; i < times; i++) {
      n.raw.tick();
      this.deliver(n.flush());
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.nodes.keys()) this.tick(id);
  }

  /** Makes `id` campaign now and delivers the election. */
  campaign(id: string): void {
    const n = this.node(id);
    n.raw.campaign();
    this.deliver(n.flush());
  }

  propose(id: string, value: string): void {
    const n = this.node(id);
    n.raw.propose(bytes(value));
    this.deliver(n.flush());
  }

  leader(): TestNode | undefined {
    return [...this.nodes.values()].find((n) => n.role === 'leader');
  }
}

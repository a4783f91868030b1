import type { RaftConfig } from '../config.ts';
import { isRaftError } from '../errors.ts';
import { Raft } from '../raft.ts';
import { SeededRandom } from '../rand.ts';
import { RawNode } from '../rawnode.ts';
import { MemoryStorage } from '../storage.ts';
import type { ConfChange, Entry, NodeId, Ready, Role } from '../types.ts';
import { SafetyChecker, SafetyViolation, entryKey, type NodeView } from './checker.ts';
import { SimNetwork, type LinkFaults } from './network.ts';

export interface SimOptions {
  readonly seed: number;
  /** Founding voters, named n1..nN. */
  readonly nodes: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  readonly snapshotChunkSize?: number;
  /** Simulated milliseconds per tick; message latency is 1–5 ms plus any fault delay. */
  readonly tickMs?: number;
  /** Builds each node's core; tests pass deliberately broken variants here. */
  readonly createRaft?: (config: RaftConfig) => Raft;
  /** Check the safety properties after every step (default true). */
  readonly check?: boolean;
  readonly onEvent?: (event: SimEvent) => void;
}

export type SimEventKind = 'role' | 'commit' | 'fault' | 'client' | 'membership' | 'snapshot';

export interface SimEvent {
  /** Simulated time in ms. */
  readonly at: number;
  readonly tick: number;
  readonly kind: SimEventKind;
  readonly node: NodeId | undefined;
  readonly text: string;
}

interface AppliedRecord {
  readonly index: number;
  readonly key: string;
}

/** One simulated server: a durable "disk" that survives crashes, and a process that does not. */
class SimNode {
  raw: RawNode | undefined;
  core: Raft | undefined;
  /** The state machine: every applied entry, in order, as index and content key. */
  applied: AppliedRecord[] = [];
  retired = false;
  role: Role = 'follower';
  /** What the checker last saw of this node; refreshed after every step that touches it. */
  view: NodeView | undefined;
  constructor(
    readonly id: NodeId,
    readonly disk: MemoryStorage,
  ) {}
  get alive(): boolean {
    return this.raw !== undefined;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A deterministic cluster of real Raft cores on a simulated network and clock. Each node's
 * host loop follows the Ready contract exactly: persist to its disk, send, apply, advance.
 * Crashing a node discards everything but its disk. With `check` on, the SafetyChecker runs
 * after every delivered message and every tick; a violation throws SafetyViolation.
 */
export class Simulator {
  now = 0;
  ticks = 0;
  readonly network: SimNetwork;
  readonly checker = new SafetyChecker();
  readonly nodes = new Map<NodeId, SimNode>();
  readonly stats = { elections: 0, proposals: 0, refusedProposals: 0, reads: 0, readsServed: 0, snapshotsInstalled: 0, crashes: 0, membershipChanges: 0 };
  /** Every normal entry value applied anywhere, with its index (the client's view of commits). */
  readonly committedValues = new Map<string, number>();

  private readonly options: SimOptions;
  private readonly random: SeededRandom;
  private readonly tickMs: number;
  private readonly pendingReads = new Map<string, { commitBefore: number }>();
  /** Removed members waiting to be shut down, with the index of their removal and who remains. */
  private readonly toRetire = new Map<NodeId, { index: number; voters: NodeId[] }>();
  private nextValue = 0;
  private nextRead = 0;
  private nextNodeNumber: number;
  private highestCommit = 0;

  constructor(options: SimOptions) {
    this.options = options;
    this.random = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.random.fork());
    this.tickMs = options.tickMs ?? 10;
    const founders = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    this.nextNodeNumber = options.nodes + 1;
    for (const id of founders) {
      const node = new SimNode(id, MemoryStorage.bootstrap(founders));
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Inspection.

  /** All node ids ever created, in creation order. */
  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no simulated node ${id}`);
    return n;
  }

  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.core?.role === 'leader' && (best === undefined || n.core.term > best.core!.term)) best = n;
    }
    return best;
  }

  /** The membership as the current leader (or else the most advanced live node) applies it. */
  membership(): { voters: NodeId[]; learners: NodeId[] } {
    const source = this.leader() ?? this.liveNodes().sort((a, b) => b.core!.log.applied - a.core!.log.applied)[0];
    if (source === undefined) return { voters: [], learners: [] };
    const cs = source.raw!.confState();
    return { voters: [...cs.voters], learners: [...cs.learners] };
  }

  status(id: NodeId) {
    const n = this.node(id);
    return n.raw?.status();
  }

  // ---------------------------------------------------------------------------------------
  // Time.

  /** Advances the clock by `count` ticks, delivering messages as they come due. */
  tick(count = 1): void {
    for (let i = 0; i < count; i++) {
      const end = this.now + this.tickMs;
      for (let m = this.network.pop(end); m !== undefined; m = this.network.pop(end)) {
        const target = this.nodes.get(m.to);
        if (target?.raw === undefined) continue;
        try {
          target.raw.step(m);
        } catch (err) {
          if (isRaftError(err)) {
            throw new SafetyViolation('Message Handling', `${m.to} rejected a ${m.type} from ${m.from}, a correct peer: ${err.message}`);
          }
          throw err;
        }
        this.afterStep(target);
      }
      this.now = end;
      this.ticks++;
      for (const n of this.nodes.values()) {
        if (n.raw === undefined) continue;
        n.raw.tick();
        this.afterStep(n);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Clients.

  /** Proposes a fresh value at a node; returns the value, or the refusal's error code. */
  propose(id: NodeId): { value: string } | { refused: string } {
    const n = this.node(id);
    if (n.raw === undefined) return { refused: 'crashed' };
    const value = `v${++this.nextValue}`;
    this.stats.proposals++;
    try {
      n.raw.propose(encoder.encode(value));
    } catch (err) {
      if (!isRaftError(err)) throw err;
      this.stats.refusedProposals++;
      return { refused: err.code };
    }
    this.emit('client', id, `propose ${value}`);
    this.afterStep(n);
    return { value };
  }

  /** Asks a node for a linearizable read; the checker verifies the index when it arrives. */
  read(id: NodeId): boolean {
    const n = this.node(id);
    if (n.raw === undefined) return false;
    const ctx = `read${++this.nextRead}`;
    this.stats.reads++;
    try {
      n.raw.readIndex(ctx);
    } catch (err) {
      if (isRaftError(err, 'not-leader')) return false;
      throw err;
    }
    this.pendingReads.set(ctx, { commitBefore: this.highestCommit });
    this.afterStep(n);
    return true;
  }

  /** Proposes a membership change through the current leader; returns the refusal code if any. */
  changeMembership(change: ConfChange): string | undefined {
    const leader = this.leader();
    if (leader?.raw === undefined) return 'no-leader';
    try {
      leader.raw.proposeConfChange(change);
    } catch (err) {
      if (isRaftError(err)) return err.code;
      throw err;
    }
    this.stats.membershipChanges++;
    this.emit('membership', leader.id, `propose ${change.type} ${change.nodeId}`);
    this.afterStep(leader);
    return undefined;
  }

  /** Creates and starts a brand-new, empty node to be added to the cluster. */
  addNode(): NodeId {
    const id = `n${this.nextNodeNumber++}`;
    const node = new SimNode(id, new MemoryStorage());
    this.nodes.set(id, node);
    this.start(node);
    return id;
  }

  /** Makes a node start an election now, as if its election timer had fired. */
  campaign(id: NodeId): void {
    const n = this.node(id);
    if (n.raw === undefined) return;
    n.raw.campaign();
    this.afterStep(n);
  }

  transferLeadership(to: NodeId): string | undefined {
    const leader = this.leader();
    if (leader?.raw === undefined) return 'no-leader';
    try {
      leader.raw.transferLeadership(to);
    } catch (err) {
      if (isRaftError(err)) return err.code;
      throw err;
    }
    this.emit('membership', leader.id, `transfer leadership to ${to}`);
    this.afterStep(leader);
    return undefined;
  }

  /** The host's log compaction: snapshot the state machine at the applied index, drop entries. */
  compact(id: NodeId, keepEntries: number): boolean {
    const n = this.node(id);
    if (n.raw === undefined) return false;
    const point = n.raw.snapshotPoint();
    if (point.index <= n.disk.snapshot().metadata.index) return false;
    if (n.applied.length !== point.index) {
      throw new Error(`${id}: state machine holds ${n.applied.length} entries but applied index is ${point.index}`);
    }
    n.disk.createSnapshot(point.index, point.confState, encoder.encode(JSON.stringify(n.applied)));
    n.disk.compact(Math.max(point.index - keepEntries, n.disk.firstIndex() - 1));
    this.emit('snapshot', id, `compacted log up to ${point.index - keepEntries} (snapshot at ${point.index})`);
    this.afterStep(n);
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Faults.

  crash(id: NodeId): boolean {
    const n = this.node(id);
    if (n.raw === undefined) return false;
    n.raw = undefined;
    n.core = undefined;
    n.view = undefined;
    n.role = 'follower';
    n.applied = [];
    this.stats.crashes++;
    this.checker.nodeRestarted(id);
    this.emit('fault', id, 'crash');
    // As a real host does when a peer's connection drops: its followers suspect it at once.
    for (const other of this.nodes.values()) {
      if (other.core?.leader === id) this.suspectLeader(other.id);
    }
    return true;
  }

  /** A node's host reports its leader unreachable (true, or a false alarm). */
  suspectLeader(id: NodeId): void {
    const n = this.node(id);
    if (n.raw === undefined) return;
    n.raw.reportLeaderUnreachable();
    this.afterStep(n);
  }

  restart(id: NodeId): boolean {
    const n = this.node(id);
    if (n.raw !== undefined || n.retired) return false;
    this.start(n);
    this.emit('fault', id, `restart (log ${n.disk.firstIndex()}..${n.disk.lastIndex()}, term ${n.disk.initialState().hardState.term})`);
    return true;
  }

  setFaults(faults: LinkFaults): void {
    const was = this.network.faults;
    if (was.drop === faults.drop && was.duplicate === faults.duplicate && was.maxDelay === faults.maxDelay) return;
    this.network.faults = faults;
    const { drop, duplicate, maxDelay } = faults;
    if (drop === 0 && duplicate === 0 && maxDelay === 0) this.emit('fault', undefined, 'links reliable');
    else this.emit('fault', undefined, `links drop ${pct(drop)}, duplicate ${pct(duplicate)}, delay up to ${maxDelay} ms`);
  }

  partition(groups: readonly (readonly NodeId[])[]): void {
    const map = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => map.set(id, i + 1)));
    this.network.partition(map);
    this.emit('fault', undefined, `partition ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`);
  }

  heal(): void {
    if (!this.network.isPartitioned()) return;
    this.network.heal();
    this.emit('fault', undefined, 'network healed');
  }

  // ---------------------------------------------------------------------------------------
  // The host loop of one node.

  private start(n: SimNode): void {
    const random = new SeededRandom(this.random.nextUint32());
    const config: RaftConfig = {
      id: n.id,
      storage: n.disk,
      random,
      electionTick: this.options.electionTick ?? 10,
      heartbeatTick: this.options.heartbeatTick ?? 1,
      preVote: this.options.preVote ?? true,
      checkQuorum: this.options.checkQuorum ?? true,
      maxSizePerMsg: this.options.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: this.options.maxInflightMsgs ?? 256,
      snapshotChunkSize: this.options.snapshotChunkSize ?? 1024 * 1024,
    };
    const createRaft = this.options.createRaft ?? ((c: RaftConfig) => new Raft(c));
    n.raw = new RawNode(config, (c) => (n.core = createRaft(c)));
    n.role = 'follower';
    // The state machine restarts from the snapshot on disk; the core replays the rest.
    const snap = n.disk.snapshot();
    n.applied = snap.metadata.index === 0 ? [] : (JSON.parse(decoder.decode(snap.data)) as AppliedRecord[]);
    this.afterStep(n);
  }

  private afterStep(n: SimNode): void {
    this.processReady(n);
    this.retireRemoved();
    if (this.options.check !== false) this.check(n);
  }

  private processReady(n: SimNode): void {
    while (n.raw?.hasReady() === true) {
      const rd = n.raw.ready();
      this.persist(n, rd);
      for (const m of rd.messages) this.network.send(m, this.now);
      this.apply(n, rd);
      n.raw.advance();
    }
  }

  private persist(n: SimNode, rd: Ready): void {
    if (rd.snapshot !== undefined) n.disk.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) n.disk.append(rd.entries);
    if (rd.hardState !== undefined) n.disk.setHardState(rd.hardState);
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.softState !== undefined && rd.softState.role !== n.role) {
      n.role = rd.softState.role;
      if (n.role === 'leader') this.stats.elections++;
      this.emit('role', n.id, `${rd.softState.role} in term ${n.core!.term}`);
    }
    if (rd.snapshot !== undefined) {
      n.applied = JSON.parse(decoder.decode(rd.snapshot.data)) as AppliedRecord[];
      this.stats.snapshotsInstalled++;
      this.checker.onSnapshotApplied(n.id, n.applied);
      this.emit('snapshot', n.id, `installed snapshot at ${rd.snapshot.metadata.index}`);
    }
    for (const e of rd.committedEntries) this.applyEntry(n, e);
    for (const rs of rd.readStates) {
      const pending = this.pendingReads.get(rs.ctx);
      if (pending === undefined) continue;
      this.pendingReads.delete(rs.ctx);
      this.checker.onReadState(n.id, rs.ctx, rs.index, pending.commitBefore);
      this.stats.readsServed++;
    }
  }

  private applyEntry(n: SimNode, e: Entry): void {
    if (e.index !== n.applied.length + 1) {
      throw new SafetyViolation('State Machine Safety', `${n.id} applied index ${e.index} after ${n.applied.length}`);
    }
    this.checker.onApply(n.id, e);
    n.applied.push({ index: e.index, key: entryKey(e) });
    if (e.index > this.highestCommit) this.highestCommit = e.index;
    if (e.type === 'normal' && e.data.byteLength > 0) {
      const value = decoder.decode(e.data);
      if (!this.committedValues.has(value)) {
        this.committedValues.set(value, e.index);
        this.emit('commit', n.id, `committed ${value} at ${e.index}`);
      }
    } else if (e.type === 'confChange' && e.term > 1) {
      const removed = e.change.nodeId;
      if (e.change.type === 'removeNode' && !this.nodes.get(removed)?.retired && !this.toRetire.has(removed)) {
        const voters = n.raw!.confState().voters.filter((id) => id !== removed);
        this.toRetire.set(removed, { index: e.index, voters });
      }
      if (n.core?.role === 'leader' || e.change.type === 'removeNode') {
        this.emit('membership', n.id, `applied ${e.change.type} ${e.change.nodeId} at ${e.index}`);
      }
    }
  }

  /**
   * Shuts removed members down for good, as an operator would, but only once a majority of
   * the remaining voters has applied the removal. Until then the removed member may still be
   * needed: when a leader removes itself from a two-member cluster, the survivor may not know
   * the removal committed and must win an election counting the old member's vote.
   */
  private retireRemoved(): void {
    for (const [id, { index, voters }] of this.toRetire) {
      const applied = voters.filter((v) => (this.nodes.get(v)?.core?.log.applied ?? 0) >= index).length;
      if (applied < Math.floor(voters.length / 2) + 1) continue;
      this.toRetire.delete(id);
      const n = this.nodes.get(id)!;
      this.crash(id);
      n.retired = true;
      this.emit('membership', id, 'retired after removal');
    }
  }

  /** Checks the node a step just changed against all others (whose cached views still hold). */
  private check(changed: SimNode): void {
    const views: NodeView[] = [];
    let changedView: NodeView | undefined;
    for (const n of this.nodes.values()) {
      if (n.core === undefined) continue;
      if (n === changed || n.view === undefined) n.view = viewOf(n.core);
      if (n === changed) changedView = n.view;
      views.push(n.view);
    }
    if (changedView !== undefined) this.checker.check(changedView, views);
    if (this.checker.maxCommitIndex > this.highestCommit) this.highestCommit = this.checker.maxCommitIndex;
  }

  private emit(kind: SimEventKind, node: NodeId | undefined, text: string): void {
    this.options.onEvent?.({ at: this.now, tick: this.ticks, kind, node, text });
  }
}

function viewOf(core: Raft): NodeView {
  const log = core.log;
  const first = log.firstIndex();
  const last = log.lastIndex();
  return {
    id: core.id,
    term: core.term,
    role: core.role,
    commitIndex: log.committed,
    snapshotIndex: first - 1,
    snapshotTerm: log.term(first - 1) ?? 0,
    lastIndex: last,
    entries: log.slice(first, last + 1, Number.MAX_SAFE_INTEGER),
  };
}

function pct(p: number): string {
  return `${Math.round(p * 100)}%`;
}


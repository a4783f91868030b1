import type { RaftConfig } from './config.ts';
import { RaftError } from './errors.ts';
import { Raft } from './raft.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ProgressStatus,
  ProposeResult,
  Proposal,
  Ready,
  SnapshotMetadata,
  SoftState,
  Status,
} from './types.ts';

interface InProgress {
  readonly lastEntry: { index: number; term: number } | undefined;
  readonly snapshotIndex: number | undefined;
  readonly committedEntries: readonly Entry[];
}

/**
 * The host's handle on a Raft node (etcd's RawNode). The host drives it from one thread:
 * tick() on a timer, step() for each message from a peer, propose()/readIndex() for clients,
 * and, whenever hasReady(), ready() → persist, send, apply → advance().
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inProgress: InProgress | undefined;

  constructor(config: RaftConfig);
  /** For tests: drive a given (possibly deliberately broken) Raft variant. */
  constructor(config: RaftConfig, createRaft: (config: RaftConfig) => Raft);
  constructor(config: RaftConfig, createRaft: (config: RaftConfig) => Raft = (c) => new Raft(c)) {
    this.raft = createRaft(config);
    this.prevSoft = this.softState();
    this.prevHard = this.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Delivers a message from a peer; throws RaftError `invalid-message` for a malformed one. */
  step(m: Message): void {
    this.raft.step(m);
  }

  /** Tells a follower that its connection to the leader broke: it campaigns soon (see Raft). */
  reportLeaderUnreachable(): void {
    this.raft.leaderUnreachable();
  }

  /** While `reason` is set (until called with undefined) this node does not campaign; it still votes. */
  refuseCampaigns(reason: string | undefined): void {
    this.raft.refuseCampaigns(reason);
  }

  /** Starts an election now instead of waiting for the election timeout. */
  campaign(): void {
    this.raft.campaignNow();
  }

  /**
   * Proposes `data` for the log. On the leader it is appended (index and term returned; it
   * is committed once it shows up in a Ready's committedEntries at that index with that term).
   * On a follower it is forwarded to the leader, unless forwarding is disabled or no leader is
   * known: then RaftError `not-leader` names the leader when known.
   */
  propose(data: Uint8Array): ProposeResult {
    return this.proposeAll([{ type: 'normal', data }]);
  }

  /** Proposes a single-server membership change (see ConfChange). Same results as propose(). */
  proposeConfChange(change: ConfChange): ProposeResult {
    return this.proposeAll([{ type: 'confChange', change }]);
  }

  /** Proposes several entries at once; they are appended together or not at all. */
  proposeAll(proposals: readonly Proposal[]): ProposeResult {
    if (proposals.length === 0) throw new RaftError('invalid-state', 'nothing to propose');
    return this.raft.propose(proposals);
  }

  /** Asks for a linearizable read point for `ctx`; it arrives in a later Ready's readStates. */
  readIndex(ctx: string): void {
    this.raft.readIndex(ctx);
  }

  /** Hands leadership to `to` (leader only); proposals are refused until it completes or times out. */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  hasReady(): boolean {
    if (this.inProgress !== undefined) return false;
    const r = this.raft;
    const soft = this.softState();
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) return true;
    if (!sameHardState(this.hardState(), this.prevHard)) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.nextSnapshot() !== undefined) return true;
    if (r.log.unstable.hasNextEntries()) return true;
    return r.log.hasNextCommittedEntries();
  }

  /**
   * What the host must do now (see Ready for the order). Until advance() is called, further
   * ready() calls throw and hasReady() is false; tick/step/propose keep working meanwhile.
   */
  ready(): Ready {
    if (this.inProgress !== undefined) {
      throw new RaftError('invalid-state', 'ready() called again before advance(); finish the previous Ready first');
    }
    const r = this.raft;
    const soft = this.softState();
    const hard = this.hardState();
    const softChanged = soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role;
    const hardChanged = !sameHardState(hard, this.prevHard);
    const entries = r.log.unstable.nextEntries();
    const snapshot = r.log.unstable.nextSnapshot();
    const committedEntries = r.log.nextCommittedEntries();
    const messages = r.msgs;
    const readStates = r.readStates;
    r.msgs = [];
    r.readStates = [];

    const mustSync =
      entries.length > 0 || snapshot !== undefined || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote;
    r.log.unstable.acceptInProgress();
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.acceptApplying(lastCommitted.index);
    if (softChanged) this.prevSoft = soft;
    if (hardChanged) this.prevHard = hard;
    const lastEntry = entries[entries.length - 1];
    this.inProgress = {
      lastEntry: lastEntry === undefined ? undefined : { index: lastEntry.index, term: lastEntry.term },
      snapshotIndex: snapshot?.metadata.index,
      committedEntries,
    };
    return {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hard : undefined,
      entries,
      snapshot,
      committedEntries,
      messages,
      readStates,
      mustSync,
    };
  }

  /** The host has persisted, sent and applied the last Ready. */
  advance(): void {
    const done = this.inProgress;
    if (done === undefined) throw new RaftError('invalid-state', 'advance() called without a Ready in progress');
    this.inProgress = undefined;
    const log = this.raft.log;
    if (done.snapshotIndex !== undefined) {
      log.stableSnapshotTo(done.snapshotIndex);
      this.raft.appliedTo(done.snapshotIndex, []);
    }
    if (done.lastEntry !== undefined) log.stableTo(done.lastEntry.index, done.lastEntry.term);
    const lastCommitted = done.committedEntries[done.committedEntries.length - 1];
    if (lastCommitted !== undefined) this.raft.appliedTo(lastCommitted.index, done.committedEntries);
  }

  /**
   * Where the host may take a snapshot for log compaction: the applied index, its term and
   * the membership as of that index. Take the state machine's image, then
   * `storage.createSnapshot(index, confState, data)` and `storage.compact(...)`.
   */
  snapshotPoint(): SnapshotMetadata {
    if (this.inProgress !== undefined || this.raft.log.unstable.snapshot !== undefined) {
      throw new RaftError('invalid-state', 'take snapshots between advance() and the next ready(), not during one');
    }
    const index = this.raft.log.applied;
    const term = this.raft.log.term(index);
    if (term === undefined) throw new RaftError('compacted', `applied index ${index} is already compacted`);
    return { index, term, confState: this.raft.membership.confState() };
  }

  confState(): ConfState {
    return this.raft.membership.confState();
  }

  /** The current term and role, cheaply (status() also copies every follower's progress). */
  role(): { readonly term: number; readonly role: Status['role'] } {
    return { term: this.raft.term, role: this.raft.role };
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (r.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.progress) {
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive, isLearner: pr.isLearner });
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leader: r.leader,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      confState: r.membership.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  private softState(): SoftState {
    return { leader: this.raft.leader, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

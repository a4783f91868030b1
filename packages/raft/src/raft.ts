import { resolveConfig, type RaftConfig, type ResolvedConfig } from './config.ts';
import { Membership } from './confchange.ts';
import { RaftError, isRaftError } from './errors.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { majority, quorumIndex, voteResult } from './quorum.ts';
import { ReadOnly } from './readonly.ts';
import { SnapshotReceiver } from './snapshot-receiver.ts';
import { entrySize } from './storage.ts';
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  Entry,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  Proposal,
  ProposeResult,
  ReadState,
  Role,
  Snapshot,
  SnapshotMessage,
  SnapshotResponseMessage,
  VoteMessage,
} from './types.ts';
import { MAX_TERM, NONE } from './types.ts';
import { validateMessage } from './validate.ts';

/** A message before `send` stamps it with this node's id and (unless given) its term. */
type Outgoing = Message extends infer M
  ? M extends Message
    ? Omit<M, 'from' | 'term'> & { readonly term?: number }
    : never
  : never;

type CampaignKind = 'preElection' | 'election' | 'transfer';

/**
 * The Raft state machine (etcd's `raft` struct). It never touches a clock, disk or socket:
 * time advances through tick(), input arrives through step() and the propose/read calls, and
 * every effect is queued (`msgs`, `readStates`, the log's unstable part) for the host to
 * collect through RawNode's Ready. A role change swaps `stepRole`/`tickRole` in one place
 * (the become* methods).
 *
 * Methods named `protected` are the seams a deliberately broken variant overrides in tests to
 * prove the property suite can fail; nothing else should subclass this.
 */
export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly membership: Membership;
  protected readonly cfg: ResolvedConfig;

  term = 0;
  vote: NodeId = NONE;
  leader: NodeId = NONE;
  role: Role = 'follower';

  /** Only on the leader: every member's replication state, itself included. */
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  msgs: Message[] = [];
  readStates: ReadState[] = [];

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** The member this leader is handing leadership to, or NONE (thesis §3.10). */
  leadTransferee: NodeId = NONE;
  /**
   * Index of the latest membership change this leader may have in its log. A new change is
   * refused until the log is applied past it, so at most one change is in flight (§4.1).
   */
  private pendingConfIndex = 0;
  private uncommittedSize = 0;
  /**
   * Set when this leader has applied its own removal (at that index). It goes on replicating
   * until a majority of the remaining voters know the removal is committed, then hands over.
   */
  private leavingAt = 0;
  /** The commit index each follower last reported in a heartbeat response. */
  private readonly commitKnown = new Map<NodeId, number>();

  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its own term (thesis §6.4). */
  private pendingReadRequests: { ctx: string; from: NodeId }[] = [];
  private readonly snapshotReceiver = new SnapshotReceiver();

  /** Set by the host when this node must never lead (its state machine is damaged): why. */
  private campaignsRefused: string | undefined;

  private stepRole: (m: Message) => void = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.log = new RaftLog(this.cfg.storage, this.cfg.maxCommittedSizePerReady);
    const { hardState, confState } = this.cfg.storage.initialState();
    this.membership = new Membership(confState);
    if (hardState.commit > this.log.lastIndex()) {
      throw new RaftError(
        'invalid-state',
        `stored commit index ${hardState.commit} is beyond the stored log, which ends at ${this.log.lastIndex()}`,
      );
    }
    this.log.committed = Math.max(this.log.committed, hardState.commit);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------------------------------
  // Role changes.

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.leader = leader;
    this.role = 'follower';
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  private becomePreCandidate(): void {
    // A pre-candidate changes neither its term nor its vote (thesis §9.6).
    this.votes.clear();
    this.leader = NONE;
    this.role = 'preCandidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.leader = this.id;
    this.role = 'leader';
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    const last = this.log.lastIndex();
    for (const id of this.membership.voters) this.progress.set(id, this.newProgress(last, false));
    for (const id of this.membership.learners) this.progress.set(id, this.newProgress(last, true));
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.match = last;
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Entries from earlier terms may hold a membership change this leader has not applied;
    // it must not stack another on top until it has (the one-at-a-time rule, §4.1).
    this.pendingConfIndex = last;
    // §5.4.2 / §8: commit an entry of the new term, which also commits everything before it.
    this.appendEntries([{ type: 'normal', data: new Uint8Array(0) }]);
  }

  private winElection(): void {
    this.becomeLeader();
    this.bcastAppend();
  }

  private newProgress(lastIndex: number, isLearner: boolean): Progress {
    return new Progress(lastIndex + 1, this.cfg.maxInflightMsgs, isLearner);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
      this.snapshotReceiver.reset();
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + this.cfg.random.intn(this.cfg.electionTick);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.progress.clear();
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.leavingAt = 0;
    this.commitKnown.clear();
    this.readOnly.reset();
    this.pendingReadRequests = [];
  }

  // ---------------------------------------------------------------------------------------
  // Time.

  tick(): void {
    this.tickRole();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup('election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        // §6.2 of the thesis: a leader cut off from a majority stops acting as leader.
        this.becomeFollower(this.term, NONE);
        return;
      }
      // A transfer that has not finished within an election timeout is abandoned (§3.10).
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /**
   * Whether this node may become leader: it is a voter, is not installing a snapshot, and its
   * host has not ruled it out (refuseCampaigns).
   */
  promotable(): boolean {
    return this.membership.voters.has(this.id) && this.log.unstable.snapshot === undefined && this.campaignsRefused === undefined;
  }

  /**
   * While `reason` is set this node goes on voting and replicating but never campaigns, even
   * when asked to take over by a transfer: its host found its state machine damaged, or has not
   * yet confirmed it. `undefined` lifts it.
   */
  refuseCampaigns(reason: string | undefined): void {
    this.campaignsRefused = reason;
  }

  /**
   * The host lost its connection to the leader (its process died, say). Rather than wait out a
   * whole election timeout, forget the leader (so its lease no longer makes us ignore other
   * candidates) and campaign within a few ticks, at a random moment so that followers who
   * noticed together do not split the vote. A false alarm is harmless: the pre-vote fails
   * while the others still hear from the leader, and its next heartbeat restores it.
   */
  leaderUnreachable(): void {
    if (this.role !== 'follower' || this.leader === NONE) return;
    this.leader = NONE;
    const soon = 1 + this.cfg.random.intn(Math.max(1, Math.floor(this.cfg.electionTick / 2)));
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - soon);
  }

  /** Starts an election now (used by hosts to speed up a single-node start, and by tests). */
  campaignNow(): void {
    this.hup('election');
  }

  private hup(reason: 'election' | 'transfer'): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // The term after ours must be one every peer accepts (see MAX_TERM).
    if (this.term >= MAX_TERM) return;
    // A committed but unapplied membership change would make us count votes against the
    // wrong configuration; wait until the host has applied it (as etcd does).
    if (this.hasUnappliedConfChange()) return;
    if (reason === 'transfer') this.campaign('transfer');
    else this.campaign(this.cfg.preVote ? 'preElection' : 'election');
  }

  private hasUnappliedConfChange(): boolean {
    const { applied, committed } = this.log;
    if (committed <= applied) return false;
    for (let lo = applied + 1; lo <= committed; ) {
      const batch = this.log.slice(lo, committed + 1, this.cfg.maxCommittedSizePerReady);
      if (batch.some((e) => e.type === 'confChange')) return true;
      lo += batch.length;
    }
    return false;
  }

  private campaign(kind: CampaignKind): void {
    let voteType: 'vote' | 'preVote';
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single voter wins at once.
      if (kind === 'preElection') this.campaign('election');
      else this.winElection();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.membership.voters) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index, logTerm, transfer: kind === 'transfer' });
    }
  }

  private poll(id: NodeId, granted: boolean) {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.membership.voters, this.votes);
  }

  // ---------------------------------------------------------------------------------------
  // Input.

  /**
   * Handles one message from a peer. Malformed messages are rejected with RaftError
   * `invalid-message` before anything changes; stale ones (an older term, a reply to an old
   * request, a reply from a non-member) are ignored.
   */
  step(m: Message): void {
    validateMessage(m, this.id);
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Thesis §4.2.3: while a follower hears from a live leader it ignores elections, so a
        // removed or partitioned server cannot disrupt the cluster. A transfer overrides this.
        const inLease = this.cfg.checkQuorum && this.leader !== NONE && this.electionElapsed < this.cfg.electionTick;
        if (inLease && !m.transfer) return;
      }
      if (m.term - this.term > this.cfg.maxTermStep) {
        this.stepTowards();
        return;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResponse' && !m.reject)) {
        // A pre-vote changes no term; a granted pre-vote reply carries the term we would
        // campaign in and is counted below.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // §5.1: a stale leader (e.g. one that was partitioned) learns the newer term from this
        // reply and steps down. Waiting for our vote requests to tell it is not enough: with
        // an outdated configuration we may not count it as a voter and never ask it.
        this.send({ type: 'appendResponse', to: m.from, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
      } else if (m.type === 'preVote' || m.type === 'vote') {
        // §5.1: a request with a stale term is rejected; our term in the reply updates the sender.
        this.sendVoteResponse(m, true);
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    if (m.type === 'voteResponse' || m.type === 'preVoteResponse') this.maybeAdoptCommit(m.commit, m.commitTerm);
    this.stepRole(m);
  }

  /**
   * A message from a term more than maxTermStep ahead of ours. A term grows by one per
   * election, so no real election put its sender there: the frame is damaged or hostile, or
   * its sender was itself pushed ahead by one. Adopting the term could move the cluster to the
   * end of the term space in one frame, from where it could never elect again (issue 11), so
   * the message is ignored. But we do move our own term up by maxTermStep (always safe: we
   * have voted in no term past ours), so a member that really is far ahead is reached within
   * a few rounds, as is a cluster that moved on while we were away.
   */
  private stepTowards(): void {
    this.becomeFollower(this.term + this.cfg.maxTermStep, NONE);
  }

  private handleVoteRequest(m: VoteMessage): void {
    // §5.2: at most one vote per term, first come first served. A pre-vote for a future term
    // binds nothing, so it may be granted regardless of our vote.
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.leader === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    // §5.4.1: only a candidate whose log is at least as up to date as ours gets our vote.
    if (this.mayGrantVote(canVote, this.log.isUpToDate(m.index, m.logTerm))) {
      this.sendVoteResponse(m, false);
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.sendVoteResponse(m, true);
    }
  }

  /** A granted vote carries the candidate's term; a refusal carries ours, to update it. */
  private sendVoteResponse(m: VoteMessage, reject: boolean): void {
    const commit = this.log.committed;
    this.send({
      type: m.type === 'vote' ? 'voteResponse' : 'preVoteResponse',
      to: m.from,
      ...(reject ? {} : { term: m.term }),
      reject,
      commit,
      commitTerm: this.log.term(commit) ?? 0,
    });
  }

  /** Adopts a peer's commit index when our log holds the same entry there (see VoteResponseMessage). */
  private maybeAdoptCommit(commit: number, term: number): void {
    if (commit > this.log.committed && term > 0 && this.log.matchTerm(commit, term)) this.log.commitTo(commit);
  }

  /** Seam for the broken-variant tests: one vote per term (§5.2), to an up-to-date log (§5.4.1). */
  protected mayGrantVote(canVote: boolean, candidateUpToDate: boolean): boolean {
    return canVote && candidateUpToDate;
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshotChunk(m);
        return;
      case 'timeoutNow':
        // Thesis §3.10: the leader picked us; campaign now, skipping the pre-vote.
        this.hup('transfer');
        return;
      case 'readIndexResponse':
        this.readStates.push({ index: m.index, ctx: m.ctx });
        return;
      default:
        // Forwarded proposals and reads meant for a leader are dropped, never bounced on:
        // the sender's idea of the leader is stale and its client will retry.
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myResponse = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // §5.2: another server won this term.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        if (m.type !== myResponse) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else this.winElection();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'appendResponse':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapshotResponse':
        this.handleSnapshotResponse(m);
        return;
      case 'propose':
        this.proposeForwarded(m.proposals);
        return;
      case 'readIndex':
        this.handleReadIndex(m.ctx, m.from);
        return;
      default:
        // Vote replies from a finished election, and messages no leader acts on.
        return;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Follower side of replication.

  private handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index already matches any leader's log (§5.4.3).
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.sendAppendResponse(m.from, lastNew);
      return;
    }
    // §5.3: the consistency check failed. Point the leader at our last entry whose term is
    // at most the probe's, so it skips a whole conflicting term per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appendResponse', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private sendAppendResponse(to: NodeId, index: number): void {
    this.send({ type: 'appendResponse', to, index, reject: false, rejectHint: 0, logTerm: 0 });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader never claims more than we acknowledged. If that is beyond our log, our disk
    // lost entries we had persisted (it was damaged, or restored from an older copy): we
    // commit nothing and tell the leader where our log really ends, so it sends the rest.
    if (m.commit > this.log.lastIndex()) {
      const last = this.log.lastIndex();
      this.send({ type: 'appendResponse', to: m.from, index: m.commit, reject: true, rejectHint: last, logTerm: this.log.lastTerm() });
      return;
    }
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResponse', to: m.from, readSeq: m.readSeq, commit: this.log.committed });
  }

  private handleSnapshotChunk(m: SnapshotMessage): void {
    if (this.cfg.checksum(m.data) !== m.checksum) {
      // Damaged on the way: answer as for a lost chunk, with what we hold, and it is resent.
      this.send({ type: 'snapshotResponse', to: m.from, snapshotIndex: m.metadata.index, offset: m.offset, received: this.snapshotReceiver.held(m) });
      return;
    }
    if (m.metadata.index <= this.log.committed) {
      // We already have everything it covers: tell the leader where we are.
      this.snapshotReceiver.reset();
      this.sendAppendResponse(m.from, this.log.committed);
      return;
    }
    const result = this.snapshotReceiver.receive(m);
    if (result.kind === 'progress') {
      this.send({ type: 'snapshotResponse', to: m.from, snapshotIndex: m.metadata.index, offset: m.offset, received: result.received });
      return;
    }
    const restored = this.restore(result.snapshot);
    this.sendAppendResponse(m.from, restored ? this.log.lastIndex() : this.log.committed);
  }

  /**
   * Installs a snapshot from the leader (§7). Returns false when it brought nothing new. The
   * snapshot's membership may not include us yet (we are joining and the leader's snapshot
   * predates our addition): we install it all the same and become a member when we apply the
   * change that adds us, exactly as a member that replays the log does.
   */
  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // Our log already contains the snapshot's last entry: keep the log, move the commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.membership.restore(confState);
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Leader side of replication.

  private appendEntries(proposals: readonly Proposal[]): { index: number; term: number } {
    const last = this.log.lastIndex();
    const entries: Entry[] = proposals.map((p, i) => ({ ...p, index: last + 1 + i, term: this.term }));
    let size = 0;
    for (const e of entries) size += entrySize(e);
    const limit = this.cfg.maxUncommittedEntriesSize;
    // Always admit a proposal when nothing is outstanding, so one large entry cannot wedge us.
    if (limit > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > limit) {
      throw new RaftError('proposal-dropped', `the leader holds ${this.uncommittedSize} bytes of uncommitted entries; retry once they commit`);
    }
    this.uncommittedSize += size;
    const newLast = this.log.append(entries);
    this.progress.get(this.id)?.maybeUpdate(newLast);
    this.maybeCommit();
    return { index: newLast, term: this.term };
  }

  /** Checks proposals against the leader's rules; returns the reason to refuse, if any. */
  private checkProposals(proposals: readonly Proposal[]): { code: 'proposal-dropped' | 'conf-change-pending' | 'invalid-conf-change' | 'learner-not-caught-up'; reason: string } | undefined {
    if (this.leadTransferee !== NONE) {
      return { code: 'proposal-dropped', reason: `leadership is being transferred to ${this.leadTransferee}; retry on the new leader` };
    }
    if (this.leavingAt > 0) {
      return { code: 'proposal-dropped', reason: 'this leader has been removed from the cluster and is handing over; retry on the next leader' };
    }
    let confChanges = 0;
    for (const p of proposals) {
      if (p.type !== 'confChange') continue;
      confChanges++;
      if (confChanges > 1 || this.pendingConfIndex > this.log.applied) {
        return { code: 'conf-change-pending', reason: 'another membership change is not yet applied; retry after it is' };
      }
      const invalid = this.membership.check(p.change);
      if (invalid !== undefined) return { code: 'invalid-conf-change', reason: invalid };
      const lagging = this.learnerLag(p.change);
      if (lagging !== undefined) return { code: 'learner-not-caught-up', reason: lagging };
    }
    return undefined;
  }

  /** Thesis §4.2.1: promote a learner only once its log is close to the leader's. */
  private learnerLag(change: ConfChange): string | undefined {
    if (change.type !== 'addVoter' || !this.membership.learners.has(change.nodeId)) return undefined;
    const pr = this.progress.get(change.nodeId);
    const match = pr?.match ?? 0;
    if (match + this.cfg.learnerCatchUpLag >= this.log.committed && pr?.state === 'replicate') return undefined;
    return `learner ${change.nodeId} has entries up to ${match} of ${this.log.committed} committed; promote it once it has caught up`;
  }

  /**
   * On the leader, appends the proposals; on a follower, forwards them to the known leader
   * (unless forwarding is disabled). Throws RaftError otherwise (`not-leader`, or a refusal).
   */
  propose(proposals: readonly Proposal[]): ProposeResult {
    if (this.role === 'leader') {
      const { index, term } = this.proposeAsLeader(proposals);
      return { kind: 'appended', index, term };
    }
    if (this.leader === NONE) {
      throw new RaftError('not-leader', `${this.id} is a ${this.role} and knows no leader; retry after an election`);
    }
    if (this.cfg.disableProposalForwarding) {
      throw new RaftError('not-leader', `${this.id} is not the leader; ${this.leader} is`, this.leader);
    }
    this.send({ type: 'propose', to: this.leader, proposals });
    return { kind: 'forwarded', leader: this.leader };
  }

  private proposeAsLeader(proposals: readonly Proposal[]): { index: number; term: number } {
    const refusal = this.checkProposals(proposals);
    if (refusal !== undefined) throw new RaftError(refusal.code, refusal.reason);
    const result = this.appendEntries(proposals);
    this.notePendingConf(proposals, result.index);
    this.bcastAppend();
    return result;
  }

  private notePendingConf(proposals: readonly Proposal[], lastIndex: number): void {
    const at = proposals.findIndex((p) => p.type === 'confChange');
    if (at >= 0) this.pendingConfIndex = lastIndex - (proposals.length - 1 - at);
  }

  /** Proposals a follower forwarded: there is no one to report a refusal to, so drop them. */
  private proposeForwarded(proposals: readonly Proposal[]): void {
    try {
      this.proposeAsLeader(proposals);
    } catch (err) {
      if (!isRaftError(err)) throw err;
    }
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) {
      if (id !== this.id) this.sendAppend(id, true);
    }
  }

  /**
   * Sends the entries `to` is missing, if its flow control allows (§5.3). With `sendIfEmpty`
   * an append without entries is sent too (to carry the commit index or probe). Returns
   * whether a message was sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    let entries: Entry[];
    try {
      entries = this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
    } catch (err) {
      if (isRaftError(err, 'compacted')) return this.sendSnapshot(to, pr);
      throw err;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentEntries(prevIndex + entries.length, entries.length);
    return true;
  }

  /** §7: the entries `to` needs are compacted away, so it gets the snapshot instead. */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower we have heard from lately: a snapshot is large (etcd does the same).
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot.metadata.index === 0) return false;
    pr.becomeSnapshot(snapshot);
    this.sendSnapshotChunk(to, pr);
    return true;
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const transfer = pr.snapshotTransfer;
    if (transfer === undefined) return;
    const { data, metadata } = transfer.snapshot;
    const end = Math.min(transfer.acked + this.cfg.snapshotChunkSize, data.byteLength);
    const chunk = data.subarray(transfer.acked, end);
    this.send({
      type: 'snapshot',
      to,
      metadata,
      offset: transfer.acked,
      data: chunk,
      done: end === data.byteLength,
      checksum: this.cfg.checksum(chunk),
    });
  }

  private handleSnapshotResponse(m: SnapshotResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const transfer = pr.snapshotTransfer;
    if (pr.state !== 'snapshot' || transfer === undefined || transfer.snapshot.metadata.index !== m.snapshotIndex) return;
    if (m.received >= transfer.snapshot.data.byteLength) {
      throw new RaftError('invalid-message', `snapshot response claims ${m.received} of ${transfer.snapshot.data.byteLength} bytes before the last chunk`);
    }
    // Stop-and-wait: only the reply to the outstanding chunk moves the transfer. A follower that
    // lost its partial copy (it restarted) answers with less than we sent, and we go back.
    if (m.offset !== transfer.acked) return;
    transfer.acked = m.received;
    this.sendSnapshotChunk(m.from, pr);
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    if (!m.reject && m.index > this.log.lastIndex()) {
      throw new RaftError('invalid-message', `append response acknowledges ${m.index}, beyond our log end ${this.log.lastIndex()}`);
    }
    pr.recentActive = true;

    if (m.reject) {
      if (m.rejectHint < pr.match) {
        // The follower's log ends before what it acknowledged in this term: its disk lost
        // entries (damaged, or restored from an older copy). A healthy follower never does
        // this, since within one term it only ever gains this leader's entries. Believe it:
        // forget the match and probe from where its log really ends (a snapshot if needed).
        // A reordered or duplicated old rejection can look the same; it costs a probe round,
        // never safety, since a lower match only holds back commits.
        pr.lostEntries(m.rejectHint);
        this.sendAppend(m.from, true);
        return;
      }
      // Fast back-off (§5.3): skip to the follower's hint, or past the whole term it lacks.
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }

    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    if (pr.state === 'snapshot') {
      const sent = pr.snapshotTransfer?.snapshot.metadata.index ?? 0;
      if (pr.match + 1 >= this.log.firstIndex()) {
        // The snapshot is in (or the follower caught up otherwise): resume with entries.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.match >= sent) {
        // The snapshot is in, but we compacted past it meanwhile: send the newer one.
        pr.becomeProbe();
        this.sendAppend(m.from, true);
        return;
      } else {
        return;
      }
    } else if (!updated && !(pr.match === m.index && pr.state === 'probe')) {
      return;
    } else if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else {
      pr.inflights.freeLE(m.index);
    }

    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, true);
    }
    // Pipelining: keep the window full while there are entries to send.
    while (this.sendAppend(m.from, false)) {
      /* each call sends one batch */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', to: m.from });
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    this.commitKnown.set(m.from, m.commit);
    if (this.leavingAt > 0 && this.maybeHandOver()) return;
    // A full window may be full of lost messages. Let one more append through: if the
    // follower lacks what came before, it rejects and replication restarts from its match.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.state === 'snapshot') {
      // A chunk or its reply may have been lost: resend where the follower left off.
      this.sendSnapshotChunk(m.from, pr);
    } else if (pr.match < this.log.lastIndex()) {
      this.sendAppend(m.from, true);
    }
    if (m.readSeq > 0) {
      this.readOnly.ack(m.from, m.readSeq);
      this.releaseReads();
    }
  }

  /**
   * Advances the commit index to what a majority has. §5.4.2 / Figure 8: only an entry of the
   * leader's own term is committed by counting replicas; earlier ones commit with it.
   */
  private maybeCommit(): boolean {
    const index = quorumIndex(this.membership.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index <= this.log.committed || !this.mayCommitByCounting(index)) return false;
    const firstInTerm = this.log.term(this.log.committed) !== this.term;
    this.log.commitTo(index);
    if (firstInTerm) this.releasePendingReadRequests();
    return true;
  }

  /** Seam for the broken-variant tests: the correct rule of §5.4.2. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.term(index) === this.term;
  }

  private bcastHeartbeat(): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', to: id, commit, readSeq: this.readOnly.seq });
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.membership.voters) {
      const pr = this.progress.get(id);
      if (id === this.id || pr?.recentActive === true) active++;
    }
    for (const [id, pr] of this.progress) {
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= majority(this.membership.voters.size);
  }

  // ---------------------------------------------------------------------------------------
  // Linearizable reads (thesis §6.4).

  /**
   * Asks for a read index for `ctx`; the answer arrives as a ReadState. A read is never
   * answered if leadership changes before it is confirmed: the host times it out and retries.
   */
  readIndex(ctx: string): void {
    if (this.role === 'leader') {
      this.handleReadIndex(ctx, this.id);
      return;
    }
    if (this.leader === NONE) {
      throw new RaftError('not-leader', 'no leader is known; retry the read after an election');
    }
    this.send({ type: 'readIndex', to: this.leader, ctx });
  }

  private handleReadIndex(ctx: string, from: NodeId): void {
    if ((this.membership.voters.size === 1 && this.membership.voters.has(this.id)) || !this.readsNeedQuorum()) {
      this.answerRead(ctx, this.log.committed, from);
      return;
    }
    // Until it commits an entry of its own term, a new leader's commit index may lag what an
    // earlier leader committed (thesis §6.4 step 1), so the read waits.
    if (this.log.term(this.log.committed) !== this.term) {
      this.pendingReadRequests.push({ ctx, from });
      return;
    }
    this.readOnly.add(ctx, this.log.committed, from);
    this.bcastHeartbeat();
  }

  /** Seam for the broken-variant tests: a read must be confirmed by a heartbeat round (§6.4). */
  protected readsNeedQuorum(): boolean {
    return true;
  }

  private releasePendingReadRequests(): void {
    const requests = this.pendingReadRequests;
    this.pendingReadRequests = [];
    for (const r of requests) this.handleReadIndex(r.ctx, r.from);
  }

  private releaseReads(): void {
    for (const read of this.readOnly.release(this.membership.voters, this.id)) {
      this.answerRead(read.ctx, read.index, read.from);
    }
  }

  private answerRead(ctx: string, index: number, from: NodeId): void {
    if (from === this.id) this.readStates.push({ index, ctx });
    else this.send({ type: 'readIndexResponse', to: from, ctx, index });
  }

  // ---------------------------------------------------------------------------------------
  // Leadership transfer (thesis §3.10).

  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') {
      throw new RaftError('not-leader', 'only the leader can transfer leadership', this.leader === NONE ? undefined : this.leader);
    }
    if (to === this.id) return;
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isLearner) {
      throw new RaftError('invalid-state', `cannot transfer leadership to ${to}: it is not a voter`);
    }
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // The transfer must finish within an election timeout or it is abandoned (tickHeartbeat).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to });
    else this.sendAppend(to, true);
  }

  // ---------------------------------------------------------------------------------------
  // Applying.

  /** The host applied entries up to `index` (RawNode.advance); membership changes take effect now. */
  appliedTo(index: number, entries: readonly Entry[]): void {
    this.log.appliedTo(index);
    for (const e of entries) {
      if (this.role === 'leader') this.uncommittedSize = Math.max(0, this.uncommittedSize - entrySize(e));
      if (e.type === 'confChange') this.applyConfChange(e.change, e.index);
    }
  }

  private applyConfChange(change: ConfChange, index: number): void {
    this.membership.apply(change);
    if (this.role !== 'leader') return;
    this.syncProgressWithMembership();
    if (!this.membership.has(this.id)) {
      // Thesis §4.2.2: a removed leader steps down once the change is committed. But the
      // others only switch configuration when they learn it is committed; stepping down
      // before they do could leave a survivor of a two-member cluster unable to win any
      // election. So keep replicating (not counting ourselves) until a majority of the new
      // configuration reports the commit, then hand over.
      this.leavingAt = index;
      this.bcastHeartbeat();
      return;
    }
    if (this.leadTransferee !== NONE && !this.membership.voters.has(this.leadTransferee)) {
      this.leadTransferee = NONE;
    }
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
    this.releaseReads();
  }

  /** Ends a removed leader's term once the survivors know; returns whether it stepped down. */
  private maybeHandOver(): boolean {
    const voters = this.membership.voters;
    if (quorumIndex(voters, (id) => this.commitKnown.get(id) ?? 0) < this.leavingAt) return false;
    // TimeoutNow to the most up-to-date survivor that knows, so it need not wait for a timeout.
    let successor: NodeId = NONE;
    let best = -1;
    for (const id of voters) {
      const match = this.progress.get(id)?.match ?? 0;
      if ((this.commitKnown.get(id) ?? 0) >= this.leavingAt && match > best) {
        successor = id;
        best = match;
      }
    }
    if (successor !== NONE) this.send({ type: 'timeoutNow', to: successor });
    this.becomeFollower(this.term, NONE);
    return true;
  }

  private syncProgressWithMembership(): void {
    const last = this.log.lastIndex();
    for (const id of [...this.progress.keys()]) {
      if (!this.membership.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.membership.voters, ...this.membership.learners]) {
      const isLearner = this.membership.learners.has(id);
      const pr = this.progress.get(id);
      if (pr === undefined) {
        const fresh = this.newProgress(last, isLearner);
        // A new member has not had the chance to be heard from; treat it as live for one round.
        fresh.recentActive = true;
        this.progress.set(id, fresh);
      } else {
        pr.isLearner = isLearner;
      }
    }
  }

  // ---------------------------------------------------------------------------------------

  private send(m: Outgoing): void {
    // Stamp the literal the caller just built rather than copying it: this is the hot path.
    const out = m as { from?: NodeId; term?: number };
    out.from = this.id;
    out.term ??= this.term;
    this.msgs.push(out as Message);
  }
}

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  MemoryStorage,
  RawNode,
  SeededRandom,
  bootstrapState,
  isRaftError,
  type ConfChange,
  type Entry,
  type NodeId,
  type RaftErrorCode,
  type Ready,
  type Snapshot,
} from '@flotilla/raft';
import type { Logger } from '@flotilla/wire';
import { decodeCommand, decodeMember, decodeSnapshot, encodeCommand, encodeMember, encodeSnapshot, type MemberContext } from './codec.ts';
import { DiskLog } from './disk.ts';
import { KvError, isKvError } from './errors.ts';
import { MvccStore, type ApplyOutcome, type MvccSnapshot } from './kv/mvcc.ts';
import type { RangeRequest, RangeResponse, Session, WatchRequest, WriteRequest, WriteResponse } from './kv/types.ts';
import { validateRange, validateWatch, validateWrite } from './kv/validate.ts';
import { LeaseClock } from './leases.ts';
import { ReadQueue, WriteQueue, sendsBeforePersisting } from './pipeline.ts';
import { PeerTransport } from './transport.ts';
import { WatchHub, type WatchSink } from './watch-hub.ts';

export interface StoreOptions {
  readonly id: NodeId;
  /** Every master this one may talk to (the cluster file's list), with its peer address. */
  readonly members: readonly { readonly id: NodeId; readonly peerUrl: string }[];
  /** Where to accept peer connections. */
  readonly peerListen: { readonly host: string; readonly port: number };
  /** Bind outgoing peer connections to this address (tests give each master its own). */
  readonly localAddress?: string;
  readonly dataDir: string;
  readonly secret: string;
  readonly logger: Logger;
  /** Raft timing: a tick every tickMs; elections after electionTicks..2×electionTicks. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Start empty and wait to be added by the cluster, instead of founding it. */
  readonly join?: boolean;
  /** The masters that found the cluster on first start (default: every one of `members`). */
  readonly founders?: readonly NodeId[];
  /** Take a state machine snapshot (and compact the log) every this many applied entries (default 50,000). */
  readonly snapshotEvery?: number;
  /** Entries kept behind a snapshot so slightly lagging followers need no snapshot. */
  readonly keepEntries?: number;
  /**
   * Revisions of history (for watches and reads at old revisions) kept: the leader compacts to
   * this many behind once twice as many have piled up (default 20,000).
   */
  readonly historyRevisions?: number;
  /** Deadline of a request that does not give its own. */
  readonly requestTimeoutMs?: number;
}

export interface StoreStatus {
  readonly name: NodeId;
  readonly role: 'leader' | 'follower' | 'candidate' | 'learner';
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** Entries held on disk. */
  readonly logSize: number;
  readonly revision: number;
  readonly compactedRevision: number;
  /** A digest of every applied entry in order: equal on masters that applied the same log. */
  readonly appliedHash: string;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly peersConnected: readonly NodeId[];
  readonly keys: number;
  readonly watchers: number;
}

export interface LeaderChange {
  readonly leader: NodeId | null;
  readonly term: number;
  /** Whether this master is now the leader. */
  readonly isLeader: boolean;
}

interface Events {
  /** Leadership moved (or became unknown). */
  leader: [LeaderChange];
  /** The node cannot go on (its disk failed); it has stopped. */
  fatal: [Error];
}

/** What a Raft snapshot's data holds: the key-value store and the members' addresses. */
interface StateSnapshot {
  readonly kv: MvccSnapshot;
  readonly members: readonly [NodeId, MemberContext][];
}

const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * One master's replicated store: it drives a Raft core with real timers, keeps the log in
 * level (fsync before anything that depends on it is sent or acknowledged), talks to peers
 * over the wire transport, and applies committed entries to the MVCC state machine.
 *
 * The loop (run): propose queued writes in one batch, ask for a read index for queued reads,
 * then for each Ready: persist (one synced batch: group commit), send, apply, advance.
 */
export class StoreNode extends EventEmitter<Events> {
  private store: MvccStore;
  private readonly watches: WatchHub;
  private readonly writes = new WriteQueue();
  private readonly reads = new ReadQueue();
  private readonly leases = new LeaseClock();
  private readonly members = new Map<NodeId, MemberContext>();
  /** The session of this master's own writes (the API server's): see KvClient's. */
  private own = { id: `node-${randomBytes(6).toString('hex')}`, seq: 0, inFlight: new Set<number>() };
  /** Names this process's read-index requests (see ReadQueue.nextBatch). */
  private readonly readPrefix: string;
  private leader: NodeId | null = null;
  private leaderTerm = 0;
  private isLeader = false;
  private running = false;
  private rerun = false;
  private closed = false;
  private ticker: NodeJS.Timeout | undefined;
  private lastSnapshotIndex: number;
  private compacting = false;

  private constructor(
    private readonly options: StoreOptions,
    private readonly disk: DiskLog,
    private readonly storage: MemoryStorage,
    private readonly raw: RawNode,
    store: MvccStore,
    private transport: PeerTransport | undefined,
  ) {
    super();
    this.store = store;
    this.watches = new WatchHub(store);
    this.lastSnapshotIndex = storage.snapshot().metadata.index;
    this.readPrefix = `${options.id}.${randomBytes(6).toString('hex')}`;
    for (const m of options.members) this.members.set(m.id, { peerUrl: m.peerUrl });
  }

  /**
   * Opens the data directory (creating the founding state on first start, unless joining),
   * replays it, starts the peer transport and the Raft clock. Throws KvError with a reason.
   */
  static async open(options: StoreOptions): Promise<StoreNode> {
    const disk = await DiskLog.open(options.dataDir);
    try {
      const loaded = await disk.load();
      const storage = new MemoryStorage();
      let store = new MvccStore();
      const restoredMembers: [NodeId, MemberContext][] = [];
      if (loaded.snapshot !== undefined) {
        storage.applySnapshot(loaded.snapshot);
        const state = decodeSnapshot(loaded.snapshot.data) as StateSnapshot;
        store = MvccStore.fromSnapshot(state.kv);
        restoredMembers.push(...state.members);
      }
      storage.append(loaded.entries);
      if (loaded.hardState !== undefined) storage.setHardState(loaded.hardState);
      const fresh = loaded.hardState === undefined && loaded.snapshot === undefined && loaded.entries.length === 0;
      if (fresh && options.join !== true) {
        // Founding members all write the same bootstrap entries (etcd's Bootstrap).
        const boot = bootstrapState(options.founders ?? options.members.map((m) => m.id));
        await disk.save(boot.hardState, boot.entries, undefined, true);
        storage.append(boot.entries);
        storage.setHardState(boot.hardState);
      }
      const electionTicks = options.electionTicks;
      const raw = new RawNode({
        id: options.id,
        storage,
        random: new SeededRandom(randomBytes(4).readUInt32LE(0)),
        electionTick: electionTicks,
        heartbeatTick: options.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        maxSizePerMsg: 1024 * 1024,
        maxInflightMsgs: 256,
        maxUncommittedEntriesSize: 64 * 1024 * 1024,
        snapshotChunkSize: 1024 * 1024,
      });
      const node = new StoreNode(options, disk, storage, raw, store, undefined);
      for (const [id, m] of restoredMembers) node.members.set(id, m);
      node.transport = await PeerTransport.start({
        self: options.id,
        listen: options.peerListen,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        secret: options.secret,
        logger: options.logger,
        maxFrameBytes: 8 * 1024 * 1024,
        heartbeatMs: Math.max(200, options.tickMs * options.heartbeatTicks * 4),
        onMessage: (m) => node.receive(m),
        onPeerDown: (peer) => node.peerDown(peer),
      });
      node.updatePeers();
      node.ticker = setInterval(() => node.tick(), options.tickMs);
      node.schedule();
      return node;
    } catch (err) {
      await disk.close().catch(() => undefined);
      throw err;
    }
  }

  get id(): NodeId {
    return this.options.id;
  }

  peerAddress(): { host: string; port: number } {
    return this.transport!.address();
  }

  // ---------------------------------------------------------------------------------------
  // Client operations.

  /**
   * Replicates a write and returns its response once applied. With a session, a retry of the
   * same (client, seq) is applied at most once. With `fence` (a term this master leads in), the
   * write is applied only if it reaches the log in that term, else it fails with `fenced`: what
   * the leader-only loops write can never land after their leadership ended. Throws KvError.
   */
  async write(request: WriteRequest, session?: Session, timeoutMs = this.options.requestTimeoutMs ?? 5000, fence?: number): Promise<WriteResponse> {
    this.assertOpen();
    // Asked of the Raft core itself, not of the last Ready: a proposal made now gets its
    // current term, and one that reaches the log in another term is refused when applied.
    if (fence !== undefined) {
      const now = this.raw.role();
      if (!(now.role === 'leader' && now.term === fence)) {
        throw new KvError('fenced', `the write was made for the leadership of term ${fence}, which this master does not hold (it is ${now.role} in term ${now.term})`);
      }
    }
    const req = validateWrite(request);
    const own = session === undefined ? this.own : undefined;
    let s: Session;
    if (own === undefined) s = session!;
    else {
      const seq = ++own.seq;
      own.inFlight.add(seq);
      // In-flight sequence numbers are added in increasing order: the first is the oldest.
      s = { client: own.id, seq, firstUnacked: own.inFlight.values().next().value! };
    }
    const data = encodeCommand({ session: s, request: req, ...(fence === undefined ? {} : { fence }) });
    try {
      const pending = this.writes.submit(`${s.client}:${s.seq}`, data, Date.now() + timeoutMs);
      this.schedule();
      return unwrap(await pending);
    } catch (err) {
      if (own !== undefined && isKvError(err, 'session-expired') && this.own === own) this.own = { id: `node-${randomBytes(6).toString('hex')}`, seq: 0, inFlight: new Set() };
      throw err;
    } finally {
      own?.inFlight.delete(s.seq);
    }
  }

  /** Reads keys; linearizable (ReadIndex) unless `serializable`. Throws KvError. */
  range(request: RangeRequest, options: { serializable?: boolean; timeoutMs?: number } = {}): Promise<RangeResponse> {
    this.assertOpen();
    const req = validateRange(request);
    if (options.serializable === true) return Promise.resolve(this.store.range(req));
    return new Promise((resolve, reject) => {
      this.reads.add({
        run: () => {
          try {
            resolve(this.store.range(req));
          } catch (err) {
            reject(err);
          }
        },
        reject,
        deadline: Date.now() + (options.timeoutMs ?? this.options.requestTimeoutMs ?? 5000),
      });
      this.schedule();
    });
  }

  /**
   * Starts a watch: `sink` gets every change from the start revision (or from now) in order.
   * Returns the first revision covered and a function that cancels the watch. Throws KvError
   * (`compacted`, `invalid-request`).
   */
  watch(request: WatchRequest, sink: WatchSink): { from: number; cancel: () => void } {
    this.assertOpen();
    const { id, from } = this.watches.add(validateWatch(request), sink);
    return { from, cancel: () => this.watches.cancel(id) };
  }

  /** The leader as this master last heard (cheap: no round trip, no status snapshot). */
  leadership(): { leader: NodeId | null; term: number; isLeader: boolean } {
    return { leader: this.leader, term: this.leaderTerm, isLeader: this.isLeader };
  }

  /** The current revision this master has applied (no round trip). */
  get revision(): number {
    return this.store.revision;
  }

  status(): StoreStatus {
    const s = this.raw.status();
    const learner = s.confState.learners.includes(this.id);
    const role = s.role === 'leader' ? 'leader' : learner ? 'learner' : s.role === 'follower' ? 'follower' : 'candidate';
    return {
      name: this.id,
      role,
      term: s.term,
      leader: s.leader === '' ? null : s.leader,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      firstIndex: s.firstIndex,
      lastIndex: s.lastIndex,
      logSize: this.disk.size(),
      revision: this.store.revision,
      compactedRevision: this.store.compactedRevision,
      appliedHash: this.store.appliedHash,
      voters: s.confState.voters,
      learners: s.confState.learners,
      peersConnected: this.transport?.connectedPeers() ?? [],
      keys: this.store.keyCount(),
      watchers: this.watches.count(),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Membership and leadership (run on the leader; others answer not-leader).

  /** Adds a master as a learner; once it has caught up, promote() makes it a voter. */
  addLearner(id: NodeId, member: MemberContext, timeoutMs = 10_000): Promise<void> {
    return this.changeMembership({ type: 'addLearner', nodeId: id, context: encodeMember(member) }, timeoutMs);
  }

  /** Promotes a learner to voter, retrying until it has caught up (or the deadline passes). */
  async promote(id: NodeId, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.changeMembership({ type: 'addVoter', nodeId: id }, deadline - Date.now(), ['learner-not-caught-up', 'conf-change-pending']);
        return;
      } catch (err) {
        if (!isKvError(err, 'unavailable') || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  removeMember(id: NodeId, timeoutMs = 10_000): Promise<void> {
    return this.changeMembership({ type: 'removeNode', nodeId: id }, timeoutMs);
  }

  transferLeadership(to: NodeId): void {
    this.assertOpen();
    this.assertLeader('leadership transfers');
    try {
      this.raw.transferLeadership(to);
    } catch (err) {
      throw raftToKv(err);
    }
    this.schedule();
  }

  private readonly confWaiters = new Map<string, { resolve: () => void; reject: (e: KvError) => void; timer: NodeJS.Timeout }>();

  /** Proposes a change and waits for it to apply; refusals in `retryable` become `unavailable`. */
  private changeMembership(change: ConfChange, timeoutMs: number, retryable: readonly RaftErrorCode[] = []): Promise<void> {
    this.assertOpen();
    // The leader decides (it alone knows whether a learner has caught up), so the request
    // goes there rather than being forwarded where a refusal could not be reported.
    this.assertLeader('membership changes');
    const key = `${change.type}:${change.nodeId}`;
    return new Promise((resolve, reject) => {
      try {
        this.raw.proposeConfChange(change);
      } catch (err) {
        reject(isRaftError(err) && retryable.includes(err.code) ? new KvError('unavailable', err.message) : raftToKv(err));
        return;
      }
      const timer = setTimeout(() => {
        this.confWaiters.delete(key);
        reject(new KvError('timeout', `the membership change ${key} was not applied in time`));
      }, Math.max(1, timeoutMs));
      this.confWaiters.set(key, { resolve, reject, timer });
      this.schedule();
    });
  }

  // ---------------------------------------------------------------------------------------
  // The loop.

  private receive(m: unknown): void {
    if (this.closed) return;
    try {
      this.raw.step(m as never);
    } catch (err) {
      if (!isRaftError(err)) throw err;
      this.options.logger.warn({ err: err.message }, 'ignored a Raft message');
    }
    this.schedule();
  }

  /** A dead leader's connections drop at once: campaign soon instead of after a full timeout. */
  private peerDown(peer: NodeId): void {
    if (this.closed || peer !== this.leader || this.isLeader) return;
    this.raw.reportLeaderUnreachable();
    this.schedule();
  }

  private tick(): void {
    if (this.closed) return;
    this.raw.tick();
    const now = Date.now();
    this.writes.expire(now);
    this.reads.expire(now);
    this.reads.retryInFlight(now - 2 * this.options.electionTicks * this.options.tickMs);
    // Generous, so a leader that is merely slow is not sent every write twice.
    if (!this.isLeader) this.writes.requeueStale(now - 5 * this.options.electionTicks * this.options.tickMs);
    if (this.isLeader) this.leaderDuties(now);
    this.schedule();
  }

  private scheduled = false;

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.rerun = false;
        this.proposeQueued();
        this.requestReadIndex();
        while (!this.closed && this.raw.hasReady()) await this.handleReady(this.raw.ready());
      } while (this.rerun && !this.closed);
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.running = false;
    }
  }

  private proposeQueued(): void {
    while (this.writes.hasQueued()) {
      const batch = this.writes.take(MAX_BATCH_BYTES, Date.now());
      try {
        const result = this.raw.proposeAll(batch.map((w) => ({ type: 'normal' as const, data: w.data })));
        if (result.kind === 'appended') this.writes.appended(batch, result.index, result.term);
      } catch (err) {
        if (!isRaftError(err)) throw err;
        // No leader yet, or the leader is busy (transfer, back-pressure): try again on the
        // next tick or leader change, until each write's deadline.
        this.writes.putBack(batch);
        return;
      }
    }
  }

  private requestReadIndex(): void {
    const ctx = this.reads.nextBatch(this.readPrefix, Date.now());
    if (ctx === undefined) return;
    try {
      this.raw.readIndex(ctx);
    } catch (err) {
      if (!isRaftError(err)) throw err;
      this.reads.unsent(ctx);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    // A leader sends first, so its disk write overlaps the followers' (thesis §10.2.1, as etcd
    // does), unless a message announces a commit beyond its disk (see sendsBeforePersisting).
    const leading = rd.softState === undefined ? this.isLeader : rd.softState.role === 'leader';
    const sendFirst = sendsBeforePersisting(rd, leading, this.storage.lastIndex());
    if (sendFirst) for (const m of rd.messages) this.transport?.send(m);
    // Committed entries already on disk need not wait for this Ready's write.
    let applied = 0;
    if (rd.snapshot === undefined) {
      const stable = this.storage.lastIndex();
      while (applied < rd.committedEntries.length && rd.committedEntries[applied]!.index <= stable) this.apply(rd.committedEntries[applied++]!);
    }
    // 1. Persist before anything that depends on it leaves this process (§5.1, etcd doc.go).
    if (rd.hardState !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined) {
      await this.disk.save(rd.hardState, rd.entries, rd.snapshot, rd.mustSync);
    }
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    // 2. Send.
    if (!sendFirst) for (const m of rd.messages) this.transport?.send(m);
    // 3. Apply.
    if (rd.snapshot !== undefined) this.installSnapshot(rd.snapshot);
    for (let i = applied; i < rd.committedEntries.length; i++) this.apply(rd.committedEntries[i]!);
    for (const rs of rd.readStates) this.reads.onReadState(rs.ctx, rs.index);
    if (rd.softState !== undefined) this.leadershipChanged(rd.softState.leader, rd.softState.role === 'leader');
    this.raw.advance();
    this.reads.serve(this.store.appliedIndex);
    await this.maybeSnapshot();
  }

  private apply(e: Entry): void {
    if (e.type === 'confChange') {
      this.store.noteApplied(e.index, e.term, new TextEncoder().encode(`${e.change.type}:${e.change.nodeId}`));
      this.applyConfChange(e.change);
    } else {
      this.store.noteApplied(e.index, e.term, e.data);
      // Empty entries are a new leader's no-op; undecodable ones (never written by a master)
      // are skipped alike on every master.
      const cmd = e.data.byteLength > 0 ? decodeCommand(e.data) : undefined;
      if (cmd !== undefined) {
        const outcome = this.store.applyCommand(cmd, e.term);
        this.afterWrite(cmd.request, outcome);
        if (cmd.session !== undefined) this.writes.resolve(`${cmd.session.client}:${cmd.session.seq}`, outcome);
      }
    }
    this.writes.appliedEntry(e.index, e.term);
  }

  /** Keeps the leader's lease clock in step with what the log decided. */
  private afterWrite(req: WriteRequest, outcome: ApplyOutcome): void {
    if (!this.isLeader) return;
    const now = Date.now();
    if (req.type === 'leaseGrant' && outcome.ok) {
      const r = outcome.response as { id: number; ttl: number };
      this.leases.renew(r.id, r.ttl, now);
    } else if (req.type === 'leaseKeepAlive') {
      if (outcome.ok) this.leases.renew(req.id, (outcome.response as { ttl: number }).ttl, now);
      else this.leases.forget(req.id);
    } else if (req.type === 'leaseRevoke') {
      this.leases.forget(req.id);
    }
  }

  private applyConfChange(change: ConfChange): void {
    const member = decodeMember(change.context);
    if (change.type === 'removeNode') this.members.delete(change.nodeId);
    else if (member !== undefined) this.members.set(change.nodeId, member);
    this.updatePeers();
    const waiter = this.confWaiters.get(`${change.type}:${change.nodeId}`);
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      this.confWaiters.delete(`${change.type}:${change.nodeId}`);
      waiter.resolve();
    }
    this.options.logger.info({ change: change.type, member: change.nodeId }, 'membership changed');
    if (change.type === 'removeNode' && change.nodeId === this.id) {
      this.options.logger.warn({}, 'this master was removed from the cluster; stop it once the others have a leader');
    }
  }

  private updatePeers(): void {
    const peers = new Map<NodeId, string>();
    for (const [id, m] of this.members) if (id !== this.id) peers.set(id, m.peerUrl);
    this.transport?.setPeers(peers);
  }

  private installSnapshot(snapshot: Snapshot): void {
    const state = decodeSnapshot(snapshot.data) as StateSnapshot;
    this.store = MvccStore.fromSnapshot(state.kv);
    // The snapshot's membership replaces ours: members removed meanwhile are gone from it.
    this.members.clear();
    for (const [id, m] of state.members) this.members.set(id, m);
    this.updatePeers();
    this.watches.replaceStore(this.store);
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.options.logger.info({ index: snapshot.metadata.index }, 'installed a snapshot from the leader');
  }

  private leadershipChanged(leader: NodeId, isLeader: boolean): void {
    const was = this.leader;
    this.leader = leader === '' ? null : leader;
    const became = isLeader && !this.isLeader;
    this.isLeader = isLeader;
    if (became) this.leases.lead(this.store, Date.now());
    if (!isLeader) this.leases.stop();
    // Writes proposed through the old leader may be lost with it; propose them again (the
    // session table applies each once). Reads waiting on it ask the new one.
    if (was !== this.leader) {
      this.writes.requeueProposed();
      this.reads.retryInFlight(Number.POSITIVE_INFINITY);
      const term = this.raw.status().term;
      this.leaderTerm = term;
      if (became || was === this.id || this.leader !== null) {
        this.options.logger.info({ leader: this.leader, term }, isLeader ? `became leader in term ${term}` : 'leader changed');
      }
      this.emit('leader', { leader: this.leader, term, isLeader });
    }
    this.rerun = true;
  }

  /** Leader-only housekeeping: expire leases, compact old revisions. */
  private leaderDuties(now: number): void {
    for (const id of this.leases.expired(now)) {
      this.write({ type: 'leaseRevoke', id }).catch((err: unknown) => {
        if (!isKvError(err, 'lease-not-found')) this.leases.retry(id);
      });
    }
    const keep = this.options.historyRevisions ?? 20_000;
    if (!this.compacting && this.store.revision - this.store.compactedRevision > 2 * keep) {
      this.compacting = true;
      // Settled either way (applied, refused, timed out, or this master stepped down): the
      // next leader duty looks again.
      const settle = (): void => {
        this.compacting = false;
      };
      this.write({ type: 'compact', revision: this.store.revision - keep }).then(settle, settle);
    }
  }

  /** Log compaction: snapshot the state machine every `snapshotEvery` applied entries. */
  private async maybeSnapshot(): Promise<void> {
    const every = this.options.snapshotEvery ?? 50_000;
    if (this.store.appliedIndex - this.lastSnapshotIndex < every) return;
    const point = this.raw.snapshotPoint();
    const state: StateSnapshot = { kv: this.store.toSnapshot(), members: [...this.members] };
    const snapshot = this.storage.createSnapshot(point.index, point.confState, encodeSnapshot(state));
    await this.disk.saveSnapshot(snapshot);
    const upTo = Math.max(0, point.index - (this.options.keepEntries ?? 5_000));
    this.storage.compact(Math.max(upTo, this.storage.firstIndex() - 1));
    await this.disk.compact(upTo);
    this.lastSnapshotIndex = point.index;
    this.options.logger.info({ index: point.index, compactedTo: upTo }, 'took a snapshot and compacted the log');
  }

  // ---------------------------------------------------------------------------------------

  private assertLeader(what: string): void {
    if (!this.isLeader) throw new KvError('not-leader', `${what} are made by the leader${this.leader === null ? '; none is known yet' : `, ${this.leader}`}`, this.leader ?? undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new KvError('closed', 'this master is shutting down');
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.options.logger.error({ err: err.message }, 'the store cannot go on');
    void this.close();
    this.emit('fatal', err);
  }

  /** Stops everything; pending requests fail with `unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    const err = new KvError('unavailable', 'this master is shutting down; retry on another');
    this.writes.failAll(err);
    this.reads.failAll(err);
    this.watches.endAll(err);
    for (const [, w] of this.confWaiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.confWaiters.clear();
    await this.transport?.close();
    // Let an in-progress Ready finish its disk write before closing the database.
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    await this.disk.close();
  }
}

function unwrap(outcome: ApplyOutcome): WriteResponse {
  if (outcome.ok) return outcome.response;
  throw new KvError(outcome.code, outcome.message);
}

function raftToKv(err: unknown): KvError {
  if (!isRaftError(err)) throw err;
  switch (err.code) {
    case 'not-leader':
      return new KvError('not-leader', err.message, err.leader);
    case 'invalid-conf-change':
    case 'invalid-state':
      return new KvError('invalid-request', err.message);
    default:
      return new KvError('unavailable', err.message);
  }
}


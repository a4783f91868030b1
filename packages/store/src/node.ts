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
  type Message,
  type NodeId,
  type RaftErrorCode,
  type Ready,
  type Snapshot,
  type SnapshotMetadata,
} from '@flotilla/raft';
import type { Frame, Logger } from '@flotilla/wire';
import { decodeMember, decodePayload, decodeRemoval, decodeSnapshot, encodeClusterId, encodeCommand, encodeMember, encodeRemoval, encodeSnapshotAsync, payloadIntact, type MemberContext } from './codec.ts';
import { DiskLog, damagedError, isDiskFull, type LoadedState } from './disk.ts';
import { KvError, isKvError } from './errors.ts';
import { AppliedHashes, HashCheck } from './hash-check.ts';
import { Announcement, Incarnations, newIdentity, readIdentity, type Identity, type Refusal } from './identity.ts';
import { checksum } from './integrity.ts';
import { MvccStore, type ApplyOutcome, type MvccSnapshot } from './kv/mvcc.ts';
import type { RangeRequest, RangeResponse, Session, WatchRequest, WriteRequest, WriteResponse } from './kv/types.ts';
import { validateRange, validateWatch, validateWrite } from './kv/validate.ts';
import { LeaseClock } from './leases.ts';
import { ReadQueue, WriteQueue, sendsBeforePersisting } from './pipeline.ts';
import { clearsBelow, formatBytes, growthOf } from './quota.ts';
import { PeerTransport } from './transport.ts';
import { WatchHub, type WatchSink } from './watch-hub.ts';

export interface StoreOptions {
  readonly id: NodeId;
  /** The cluster's name (the cluster file's `cluster`), recorded in the data directory. Default "flotilla". */
  readonly cluster?: string;
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
  /** …or once this many bytes of entries were written since the last one (default 64 MiB). */
  readonly snapshotBytes?: number;
  /** Entries kept behind a snapshot so slightly lagging followers need no snapshot. */
  readonly keepEntries?: number;
  /**
   * Revisions of history (for watches and reads at old revisions) kept: the leader compacts to
   * this many behind once twice as many have piled up (default 20,000).
   */
  readonly historyRevisions?: number;
  /** The most data the store keeps (see quota.ts; default 2 GiB). */
  readonly quotaBytes?: number;
  /** How often masters compare their applied hashes once serving (default 5 s). */
  readonly hashCheckMs?: number;
  /** Deadline of a request that does not give its own. */
  readonly requestTimeoutMs?: number;
  /** Appended to the messages that tell an operator to re-add this master (the exact commands). */
  readonly rejoinHint?: string;
}

export type AlarmType = 'CORRUPT' | 'NOSPACE' | 'DISKFULL';

/**
 * Why a master is not serving, or serves less (etcd's alarms, and one of ours):
 * - CORRUPT: its data or applied state is damaged; it answers nothing and never leads again.
 * - NOSPACE: the store's data reached its quota; writes that add data are refused.
 * - DISKFULL: its disk refuses writes; it retries until space returns, and answers nothing meanwhile.
 */
export interface Alarm {
  readonly type: AlarmType;
  readonly message: string;
  readonly since: string;
}

export interface StoreStatus {
  readonly name: NodeId;
  /** This data directory's incarnation of the member (see identity.ts). */
  readonly memberId: string;
  /** The cluster's id, once this master has applied it. */
  readonly clusterId: string | null;
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
  /** The size of the data kept, and the quota it may not pass. */
  readonly dbSizeBytes: number;
  readonly quotaBytes: number;
  /** Whether this master answers reads and writes now; if not, `notServing` says why. */
  readonly serving: boolean;
  readonly notServing?: string;
  readonly alarms: readonly Alarm[];
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
  /** The node cannot go on (its disk failed or its data is damaged); it has stopped. */
  fatal: [Error];
  /** An alarm was raised or cleared (the current set). */
  alarms: [readonly Alarm[]];
}

/** A snapshot of the state at `point`, encoded. */
interface SnapshotJob {
  readonly point: SnapshotMetadata;
  readonly data: Uint8Array;
  /** installSnapshot() calls before it was taken. */
  readonly installs: number;
}

/** What a Raft snapshot's data holds: the key-value store, the members' addresses, the cluster id. */
interface StateSnapshot {
  readonly kv: MvccSnapshot;
  readonly members: readonly [NodeId, MemberContext][];
  readonly clusterId?: string | null;
  /**
   * The member ids the log has removed up to the snapshot (see RemovalContext): a master that
   * starts from it retires exactly these. Snapshots from before have none.
   */
  readonly retired?: readonly string[];
}

const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const DEFAULT_QUOTA = 2 * 1024 ** 3;

/** The parts of a master that exist before its Raft node (identity, peers' incarnations, transport). */
interface Opened {
  readonly disk: DiskLog;
  readonly loaded: LoadedState;
  readonly identity: { current: Identity };
  readonly incarnations: Incarnations;
  readonly transport: PeerTransport;
  /** Receives the transport's callbacks once the node exists. */
  readonly bind: (node: StoreNode) => void;
}

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
  /** Member ids the applied log has removed (kept in snapshots: see StateSnapshot.retired). */
  private readonly retiredIds = new Set<string>();
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
  private snapshotRetryAt = 0;
  /** A snapshot being encoded in the background; one encoded and waiting to be stored. */
  private snapshotEncoding = false;
  private snapshotReady: SnapshotJob | undefined;
  /** One stored in Raft's storage whose disk write failed (a full disk), to save again. */
  private snapshotUnsaved: SnapshotJob | undefined;
  /** Snapshots installed from the leader: one encoded before the latest is not stored. */
  private installs = 0;
  private compacting = false;
  /** The cluster's id, from the log (chosen by its first leader). */
  private clusterId: string | null;
  private clusterIdProposedIn = 0;
  private readonly hashes = new AppliedHashes();
  private readonly hashCheck: HashCheck;
  private nextHashCheck = 0;
  private corrupt: Alarm | undefined;
  private nospace: Alarm | undefined;
  private diskFull: Alarm | undefined;
  private readonly quota: number;
  private readonly transport: PeerTransport;
  private readonly identity: { current: Identity };
  private readonly incarnations: Incarnations;

  private constructor(
    private readonly options: StoreOptions,
    private readonly disk: DiskLog,
    private readonly storage: MemoryStorage,
    private readonly raw: RawNode,
    store: MvccStore,
    opened: Opened,
    restored: StateSnapshot | undefined,
  ) {
    super();
    this.store = store;
    this.watches = new WatchHub(store);
    this.transport = opened.transport;
    this.identity = opened.identity;
    this.incarnations = opened.incarnations;
    this.lastSnapshotIndex = storage.snapshot().metadata.index;
    this.readPrefix = `${options.id}.${randomBytes(6).toString('hex')}`;
    this.quota = options.quotaBytes ?? DEFAULT_QUOTA;
    for (const m of options.members) this.members.set(m.id, { peerUrl: m.peerUrl });
    for (const [id, m] of restored?.members ?? []) this.members.set(id, m);
    for (const id of restored?.retired ?? []) this.retiredIds.add(id);
    this.clusterId = restored?.clusterId ?? null;
    this.hashes.reset(store.appliedIndex, store.appliedHash);
    const hs = storage.initialState().hardState;
    this.hashCheck = new HashCheck({
      self: options.id,
      hashes: this.hashes,
      applied: () => ({ index: this.store.appliedIndex, hash: this.store.appliedHash }),
      voters: () => this.raw.confState().voters,
      peers: () => this.transport.connectedPeers(),
      send: (to, c) => this.transport.sendControl(to, c),
      alarms: () => this.alarms().map((a) => a.type),
      logger: options.logger,
      gateIndex: hs.commit,
      onConfirmed: () => {
        options.logger.info({ index: this.store.appliedIndex }, 'applied state confirmed by a majority of the masters; serving');
        this.releaseCampaigns();
      },
      onCorrupt: (message) => this.raiseCorrupt(message),
    });
    // Nor may it lead before then: a leader ships its log and snapshots to the others.
    if (!this.hashCheck.confirmed) {
      this.campaignsHeldSince = Date.now();
      raw.refuseCampaigns('its applied state is not yet confirmed by a majority of the masters');
    }
    const stored = this.identity.current.corrupt;
    if (stored !== undefined) this.raiseCorrupt(stored.message, stored.since);
  }

  /** When campaigns were held back until confirmation (undefined: they are not). */
  private campaignsHeldSince: number | undefined;

  private releaseCampaigns(): void {
    if (this.campaignsHeldSince === undefined || this.corrupt !== undefined) return;
    this.campaignsHeldSince = undefined;
    this.raw.refuseCampaigns(undefined);
  }

  /**
   * Opens the data directory (creating it on first start), makes sure it belongs to this member
   * and that the cluster does not remember a predecessor of it (identity.ts), founds the cluster
   * on first start (unless joining), replays the log, starts the peer transport and the Raft
   * clock. Throws KvError with a reason (`corrupt`, `wrong-data-dir`, `unavailable`).
   */
  static async open(options: StoreOptions): Promise<StoreNode> {
    const opened = await StoreNode.prepare(options);
    const { disk, loaded } = opened;
    try {
      const storage = new MemoryStorage();
      let store = new MvccStore();
      let restored: StateSnapshot | undefined;
      if (loaded.snapshot !== undefined) {
        restored = decodeState(loaded.snapshot, disk.path);
        storage.applySnapshot(loaded.snapshot);
        store = MvccStore.fromSnapshot(restored.kv);
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
      const raw = new RawNode({
        id: options.id,
        storage,
        random: new SeededRandom(randomBytes(4).readUInt32LE(0)),
        electionTick: options.electionTicks,
        heartbeatTick: options.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        maxSizePerMsg: 1024 * 1024,
        maxInflightMsgs: 256,
        maxUncommittedEntriesSize: 64 * 1024 * 1024,
        snapshotChunkSize: 1024 * 1024,
        checksum,
      });
      const node = new StoreNode(options, disk, storage, raw, store, opened, restored);
      opened.bind(node);
      node.updatePeers();
      node.ticker = setInterval(() => node.tick(), options.tickMs);
      node.schedule();
      return node;
    } catch (err) {
      await opened.transport.close().catch(() => undefined);
      await disk.close().catch(() => undefined);
      throw err;
    }
  }

  /** Opens the directory, establishes its identity and announces it to the peers (identity.ts). */
  private static async prepare(options: StoreOptions): Promise<Opened> {
    const disk = await DiskLog.open(options.dataDir);
    let transport: PeerTransport | undefined;
    try {
      const loaded = await disk.load();
      const cluster = options.cluster ?? 'flotilla';
      const hasRaft = loaded.hardState !== undefined || loaded.snapshot !== undefined || loaded.entries.length > 0;
      let found: Identity | undefined;
      try {
        found = readIdentity(loaded.records.get('identity'));
      } catch (err) {
        throw damagedError(disk.path, (err as Error).message);
      }
      if (found === undefined && hasRaft) throw damagedError(disk.path, 'it holds a log but no identity record');
      if (found !== undefined && found.member !== options.id) {
        throw new KvError('wrong-data-dir', `the data directory ${options.dataDir} belongs to member ${found.member} of cluster ${found.cluster}, not to ${options.id}; give each master its own directory`);
      }
      if (found !== undefined && found.cluster !== cluster) {
        throw new KvError('wrong-data-dir', `the data directory ${options.dataDir} belongs to cluster ${found.cluster}, not to ${cluster}`);
      }
      const identity = { current: found ?? newIdentity(cluster, options.id) };
      if (found === undefined) await disk.writeRecord('identity', identity.current);
      const incarnations = Incarnations.from(loaded.records.get('peers'), (r) => disk.writeRecord('peers', r));
      const known = new Set(options.members.map((m) => m.id));
      let node: StoreNode | undefined;
      const electionMs = options.tickMs * options.electionTicks;
      // A new founder's configuration will be the founders; anyone else counts the cluster
      // file until its peers say what the configuration is.
      const founders = options.founders ?? options.members.map((m) => m.id);
      const founding = !hasRaft && options.join !== true && founders.includes(options.id);
      const announcement = identity.current.announced ? undefined : new Announcement(options.id, founding ? founders.length : options.members.length, Math.max(1000, 10 * electionMs));
      transport = await PeerTransport.start({
        self: options.id,
        listen: options.peerListen,
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        secret: options.secret,
        logger: options.logger,
        maxFrameBytes: 8 * 1024 * 1024,
        heartbeatMs: Math.max(200, options.tickMs * options.heartbeatTicks * 4),
        hello: () => ({ member: options.id, memberId: identity.current.memberId, cluster, clusterId: identity.current.clusterId }),
        // Until the node exists, what it will have applied once it replayed its disk.
        admit: (hello) => incarnations.admit(hello, identity.current, (name) => known.has(name) || node?.isMember(name) === true, node?.appliedIndex() ?? loaded.hardState?.commit ?? 0),
        onMessage: (m) => node?.receive(m),
        onPeerDown: (peer) => node?.peerDown(peer),
        members: () => node?.memberNames() ?? (founding ? founders : []),
        onIntroduced: (peer, answer) => {
          announcement?.answer(peer, answer);
          if (!answer.ok) node?.refusedBy(peer, answer.reason, answer.message);
        },
        onControl: (c, from, reply) => node?.control(c, from, reply),
        onControlReply: (c, from) => node?.controlReply(c, from),
      });
      const urls = new Map(options.members.filter((m) => m.id !== options.id).map((m) => [m.id, m.peerUrl]));
      transport.setPeers(urls);
      if (announcement !== undefined) {
        try {
          await announcement.wait((welcomed, needed) =>
            options.logger.info({ welcomed }, `this master is new (member id ${identity.current.memberId}): waiting to hear from ${needed} of the other masters before it takes part (${welcomed.length} so far)`),
          );
        } catch (err) {
          if (err instanceof Error) throw err;
          const { peer, message } = err as { peer: NodeId; message: string };
          // The next start must not reuse an id that some peers recorded just now.
          await disk.writeRecord('identity', newIdentity(cluster, options.id)).catch(() => undefined);
          throw new KvError(
            'wrong-data-dir',
            hasRaft
              ? `${peer} refuses this master: ${message}`
              : `the data directory ${options.dataDir} is new (empty or missing), but ${message}. It will not rejoin under its old identity, which could lose acknowledged writes: remove it from the cluster, then start it with an empty data directory as a joining member and add it back${options.rejoinHint === undefined ? '' : ` (${options.rejoinHint})`}`,
          );
        }
        identity.current = { ...identity.current, announced: true };
        await disk.writeRecord('identity', identity.current);
      }
      return {
        disk,
        loaded,
        identity,
        incarnations,
        transport,
        bind: (n) => {
          node = n;
        },
      };
    } catch (err) {
      await transport?.close().catch(() => undefined);
      await disk.close().catch(() => undefined);
      throw err;
    }
  }

  get id(): NodeId {
    return this.options.id;
  }

  peerAddress(): { host: string; port: number } {
    return this.transport.address();
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
    this.assertServing();
    // Asked of the Raft core itself, not of the last Ready: a proposal made now gets its
    // current term, and one that reaches the log in another term is refused when applied.
    if (fence !== undefined) {
      const now = this.raw.role();
      if (!(now.role === 'leader' && now.term === fence)) {
        throw new KvError('fenced', `the write was made for the leadership of term ${fence}, which this master does not hold (it is ${now.role} in term ${now.term})`);
      }
    }
    const req = validateWrite(request);
    this.assertRoom(req);
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
    const down = this.notServing();
    if (down !== undefined) return Promise.reject(down);
    let req: RangeRequest;
    try {
      req = validateRange(request);
      if (options.serializable === true) return Promise.resolve(this.store.range(req));
    } catch (err) {
      return Promise.reject(err as Error);
    }
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
    this.assertServing();
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

  /** The alarms raised on this master now. */
  alarms(): Alarm[] {
    this.refreshNospace();
    return [this.corrupt, this.nospace, this.diskFull].filter((a): a is Alarm => a !== undefined);
  }

  /** Why this master does not answer reads and writes now, or undefined when it does. */
  notServing(): KvError | undefined {
    if (this.closed) return new KvError('closed', 'this master is shutting down');
    if (this.corrupt !== undefined) return new KvError('corrupt', `this master does not serve: CORRUPT: ${this.corrupt.message}`);
    if (this.diskFull !== undefined) return new KvError('unavailable', `this master cannot write to its disk (${this.diskFull.message}); retry on another master`);
    if (!this.hashCheck.confirmed) return new KvError('unavailable', 'this master is comparing what it applied with the other masters before it serves; retry in a moment or on another master');
    return undefined;
  }

  status(): StoreStatus {
    const s = this.raw.status();
    const learner = s.confState.learners.includes(this.id);
    const role = s.role === 'leader' ? 'leader' : learner ? 'learner' : s.role === 'follower' ? 'follower' : 'candidate';
    const down = this.closed ? undefined : this.notServing();
    return {
      name: this.id,
      memberId: this.identity.current.memberId,
      clusterId: this.clusterId,
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
      peersConnected: this.transport.connectedPeers(),
      keys: this.store.keyCount(),
      watchers: this.watches.count(),
      dbSizeBytes: this.store.sizeBytes,
      quotaBytes: this.quota,
      serving: down === undefined && !this.closed,
      ...(down === undefined ? {} : { notServing: down.message }),
      alarms: this.alarms(),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Membership and leadership (run on the leader; others answer not-leader).

  /** Adds a master as a learner; once it has caught up, promote() makes it a voter. */
  addLearner(id: NodeId, member: MemberContext, timeoutMs = 10_000): Promise<void> {
    return this.changeUntil({ type: 'addLearner', nodeId: id, context: encodeMember(member) }, timeoutMs, ['conf-change-pending']);
  }

  /** Promotes a learner to voter, retrying until it has caught up (or the deadline passes). */
  promote(id: NodeId, timeoutMs = 30_000): Promise<void> {
    return this.changeUntil({ type: 'addVoter', nodeId: id }, timeoutMs, ['learner-not-caught-up', 'conf-change-pending']);
  }

  removeMember(id: NodeId, timeoutMs = 10_000): Promise<void> {
    // The removal names the incarnation it removes (see RemovalContext).
    const memberId = id === this.id ? this.identity.current.memberId : this.incarnations.memberIdOf(id);
    const context = memberId === undefined ? {} : { context: encodeRemoval({ memberId }) };
    return this.changeUntil({ type: 'removeNode', nodeId: id, ...context }, timeoutMs, ['conf-change-pending']);
  }

  /** Proposes a change, retrying refusals in `retryable` (the previous change still applying, say) until the deadline. */
  private async changeUntil(change: ConfChange, timeoutMs: number, retryable: readonly RaftErrorCode[]): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.changeMembership(change, deadline - Date.now(), retryable);
        return;
      } catch (err) {
        if (!isKvError(err, 'unavailable') || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
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

  /** The log index this master has applied. */
  appliedIndex(): number {
    return this.store.appliedIndex;
  }

  /** The members of the configuration this master has applied (voters and learners). */
  memberNames(): NodeId[] {
    const cs = this.raw.confState();
    return [...cs.voters, ...cs.learners];
  }

  /** Whether `name` is a member this master knows of (listed, or added since). */
  isMember(name: NodeId): boolean {
    return this.members.has(name);
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
  // Peers.

  private receive(m: unknown): void {
    // While the disk refuses writes nothing can be persisted: drop what peers send, as a lost
    // message (Raft resends), rather than pile it up in memory for as long as the disk is full.
    if (this.closed || this.diskFull !== undefined) return;
    const damaged = damagedEntry(m);
    if (damaged !== undefined) {
      // Damaged on the way (or by the sender): not taken; Raft sends it again.
      this.options.logger.warn({ from: (m as Message).from, index: damaged }, `${(m as Message).from} sent ${damaged > 0 ? `entry ${damaged}` : 'a proposal'} whose checksum does not match; ignored it`);
      return;
    }
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

  private readonly refusals = new Map<NodeId, string>();

  /** A peer would not admit us (a running master: it was removed, or its peers know another incarnation). */
  private refusedBy(peer: NodeId, reason: Refusal, message: string): void {
    if (reason === 'busy' || this.refusals.get(peer) === message) return;
    this.refusals.set(peer, message);
    this.options.logger.warn({ peer, reason }, `${peer} refuses to talk to this master: ${message}`);
  }

  private control(c: Frame, from: NodeId, reply: (c: Frame) => void): void {
    if (this.closed) return;
    if (c['k'] === 'hashAsk') this.hashCheck.onAsk(from, c, reply);
  }

  private controlReply(c: Frame, from: NodeId): void {
    if (this.closed) return;
    if (c['k'] === 'hashTell') this.hashCheck.onTell(from, c);
  }

  // ---------------------------------------------------------------------------------------
  // The loop.

  private tick(): void {
    if (this.closed) return;
    // A master that cannot persist must not campaign either (its votes could not be kept).
    if (this.diskFull === undefined) this.raw.tick();
    const now = Date.now();
    this.writes.expire(now);
    this.reads.expire(now);
    this.reads.retryInFlight(now - 2 * this.options.electionTicks * this.options.tickMs);
    // Generous, so a leader that is merely slow is not sent every write twice.
    if (!this.isLeader) this.writes.requeueStale(now - 5 * this.options.electionTicks * this.options.tickMs);
    if (this.isLeader && this.corrupt === undefined) this.leaderDuties(now);
    // A CORRUPT leader keeps trying to hand over (a transfer not done in an election timeout is abandoned).
    if (this.isLeader && this.corrupt !== undefined) this.handOver();
    // Confirmation may never come while the only masters that could confirm us wait for a
    // leader that only we can be (our log is the longest): then campaign anyway, said aloud,
    // rather than leave the cluster without one.
    if (this.campaignsHeldSince !== undefined && now - this.campaignsHeldSince > 10 * this.options.electionTicks * this.options.tickMs) {
      this.options.logger.warn({}, 'no majority has confirmed what this master applied yet; it may campaign all the same, so that the cluster is not left without a leader');
      this.releaseCampaigns();
    }
    // Until a majority has confirmed what we replayed, ask on every tick; then now and then.
    if (!this.hashCheck.confirmed || now >= this.nextHashCheck) {
      this.hashCheck.ask();
      this.nextHashCheck = now + (this.options.hashCheckMs ?? 5000);
    }
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
    if (this.isLeader && this.clusterId === null && this.clusterIdProposedIn !== this.leaderTerm) {
      // The first leader names the cluster; the first such entry applied wins everywhere.
      this.clusterIdProposedIn = this.leaderTerm;
      try {
        this.raw.propose(encodeClusterId(randomBytes(8).toString('hex')));
      } catch (err) {
        if (!isRaftError(err)) throw err;
        this.clusterIdProposedIn = 0;
      }
    }
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
    // What leaves this master must be what was written: a damaged entry in our own log stops us.
    for (const m of rd.messages) {
      const damaged = damagedEntry(m);
      if (damaged !== undefined) throw damagedError(this.disk.path, `entry ${damaged} of the log held in memory fails its checksum`);
    }
    // A leader sends first, so its disk write overlaps the followers' (thesis §10.2.1, as etcd
    // does), unless a message announces a commit beyond its disk (see sendsBeforePersisting).
    const leading = rd.softState === undefined ? this.isLeader : rd.softState.role === 'leader';
    const sendFirst = sendsBeforePersisting(rd, leading, this.storage.lastIndex());
    if (sendFirst) for (const m of rd.messages) this.transport.send(m);
    // Committed entries already on disk need not wait for this Ready's write.
    let applied = 0;
    if (rd.snapshot === undefined) {
      const stable = this.storage.lastIndex();
      while (applied < rd.committedEntries.length && rd.committedEntries[applied]!.index <= stable) this.apply(rd.committedEntries[applied++]!);
    }
    // 1. Persist before anything that depends on it leaves this process (§5.1, etcd doc.go).
    if (rd.hardState !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined) {
      await this.persist(() => this.disk.save(rd.hardState, rd.entries, rd.snapshot, rd.mustSync));
    }
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    // 2. Send.
    if (!sendFirst) for (const m of rd.messages) this.transport.send(m);
    // 3. Apply.
    if (rd.snapshot !== undefined) this.installSnapshot(rd.snapshot);
    for (let i = applied; i < rd.committedEntries.length; i++) this.apply(rd.committedEntries[i]!);
    for (const rs of rd.readStates) this.reads.onReadState(rs.ctx, rs.index);
    if (rd.softState !== undefined) this.leadershipChanged(rd.softState.leader, rd.softState.role === 'leader');
    this.raw.advance();
    this.reads.serve(this.store.appliedIndex);
    this.hashCheck.onApplied(this.store.appliedIndex);
    await this.maybeSnapshot();
  }

  /**
   * Runs a disk write; while the disk is full it raises DISKFULL and retries (reopening the
   * database, which LevelDB needs after a failed write) until space returns, holding the loop
   * so that nothing depending on the write is sent or acknowledged. Other failures throw.
   */
  private async persist(write: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await write();
        if (this.diskFull !== undefined) {
          this.options.logger.info({ alarm: 'DISKFULL' }, 'the disk takes writes again; this master goes on');
          this.diskFull = undefined;
          this.emit('alarms', this.alarms());
          // Tell the peers now (the alarms ride on the hash check), not at the next round.
          this.hashCheck.ask();
        }
        return;
      } catch (err) {
        if (!isDiskFull(err) || this.closed) throw err;
        if (this.diskFull === undefined) {
          this.diskFull = { type: 'DISKFULL', message: `its disk is full (${(err as Error).message}); retrying every second`, since: new Date().toISOString() };
          this.options.logger.error({ alarm: 'DISKFULL', dir: this.options.dataDir }, `DISKFULL: cannot write to ${this.disk.path}: ${(err as Error).message}; this master answers no requests and retries until space is freed`);
          this.emit('alarms', this.alarms());
          this.hashCheck.ask();
          // Waiting clients are better served by another master.
          const busy = new KvError('unavailable', 'this master cannot write to its disk (it is full); retry on another master');
          this.writes.failAll(busy);
          this.reads.failAll(busy);
        }
        for (;;) {
          await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
          if (this.closed) throw new KvError('closed', 'this master is shutting down');
          try {
            await this.disk.recover();
            break;
          } catch (e) {
            if (!isDiskFull(e)) throw e;
          }
        }
      }
    }
  }

  private apply(e: Entry): void {
    if (e.type === 'confChange') {
      this.noteApplied(e.index, e.term, new TextEncoder().encode(`${e.change.type}:${e.change.nodeId}`));
      this.applyConfChange(e.change, e.index);
    } else {
      this.noteApplied(e.index, e.term, e.data);
      // Empty entries are a new leader's no-op; payloads this version does not write (never
      // written by a master) are skipped alike on every master.
      const payload = e.data.byteLength > 0 ? decodePayload(e.data) : undefined;
      if (payload?.kind === 'damaged') throw damagedError(this.disk.path, `log entry ${e.index} fails its checksum as it is applied`);
      if (payload?.kind === 'command') {
        const cmd = payload.command;
        const outcome = this.store.applyCommand(cmd, e.term);
        this.afterWrite(cmd.request, outcome);
        if (cmd.session !== undefined) this.writes.resolve(`${cmd.session.client}:${cmd.session.seq}`, outcome);
      } else if (payload?.kind === 'clusterId') {
        this.adoptClusterId(payload.id);
      }
    }
    this.writes.appliedEntry(e.index, e.term);
  }

  private noteApplied(index: number, term: number, data: Uint8Array): void {
    this.store.noteApplied(index, term, data);
    this.hashes.record(index, this.store.appliedHash);
  }

  private adoptClusterId(id: string): void {
    if (this.clusterId !== null) return;
    this.clusterId = id;
    const mine = this.identity.current;
    if (mine.clusterId === id) return;
    if (mine.clusterId !== null) this.options.logger.error({ clusterId: id, recorded: mine.clusterId }, 'the log names a cluster id other than the one this data directory recorded');
    this.identity.current = { ...mine, clusterId: id };
    this.disk.writeRecord('identity', this.identity.current).catch((err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'could not record the cluster id yet'));
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

  private applyConfChange(change: ConfChange, index: number): void {
    const member = decodeMember(change.context);
    const removed = change.type === 'removeNode' ? decodeRemoval(change.context)?.memberId : undefined;
    if (change.type === 'removeNode') {
      this.members.delete(change.nodeId);
      if (removed !== undefined) this.retiredIds.add(removed);
      this.hashCheck.forget(change.nodeId);
      // Its incarnation may never come back (a new, empty one may: see Incarnations.retire).
      this.incarnations.retire(change.nodeId, index, removed).catch((err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'could not record a removed member'));
    } else if (member !== undefined) this.members.set(change.nodeId, member);
    this.updatePeers();
    const waiter = this.confWaiters.get(`${change.type}:${change.nodeId}`);
    if (waiter !== undefined) {
      clearTimeout(waiter.timer);
      this.confWaiters.delete(`${change.type}:${change.nodeId}`);
      waiter.resolve();
    }
    this.options.logger.info({ change: change.type, member: change.nodeId }, 'membership changed');
    if (change.type === 'removeNode' && change.nodeId === this.id) {
      // Replaying the log from empty, a master added back meets its own earlier removal.
      if (removed !== undefined && removed !== this.identity.current.memberId) this.options.logger.info({ memberId: removed }, 'applied the removal of an earlier incarnation of this master');
      else this.options.logger.warn({}, 'this master was removed from the cluster; stop it once the others have a leader');
    }
  }

  private updatePeers(): void {
    const peers = new Map<NodeId, string>();
    for (const [id, m] of this.members) if (id !== this.id) peers.set(id, m.peerUrl);
    this.transport.setPeers(peers);
  }

  private installSnapshot(snapshot: Snapshot): void {
    const state = decodeState(snapshot, this.disk.path);
    this.store = MvccStore.fromSnapshot(state.kv);
    // The snapshot's membership replaces ours: members removed meanwhile are gone from it.
    this.members.clear();
    for (const [id, m] of state.members) this.members.set(id, m);
    this.retiredIds.clear();
    for (const id of state.retired ?? []) this.retiredIds.add(id);
    // A snapshot that names the ids it removed retires exactly those: a master catching up
    // from empty has met every peer before applying anything, and "not in the membership, met
    // before the snapshot's index" would retire a member added back since. Older snapshots
    // fall back to that rule.
    const retiring = state.retired === undefined ? this.incarnations.retireAllBut(new Set(this.members.keys()), snapshot.metadata.index) : this.incarnations.retireIds(state.retired);
    retiring.catch((err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'could not record removed members'));
    if (state.clusterId !== undefined && state.clusterId !== null) this.adoptClusterId(state.clusterId);
    this.updatePeers();
    this.watches.replaceStore(this.store);
    this.hashes.reset(this.store.appliedIndex, this.store.appliedHash);
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.installs++;
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
    if (became && this.corrupt !== undefined) this.handOver();
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

  /**
   * Log compaction: snapshot the state machine every `snapshotEvery` applied entries (or
   * bytes). The state is captured at once (toSnapshot copies its lists, not its values) and
   * encoded in the background a few milliseconds at a time, while this loop goes on sending
   * and applying: in one step, a 50 MB store took 800 ms, on every master at about the same
   * index. The encoded snapshot is stored here, in the loop, at a later pass, unless the
   * leader sent a newer one meanwhile.
   */
  private async maybeSnapshot(): Promise<void> {
    const ready = this.snapshotReady;
    if (ready !== undefined) {
      this.snapshotReady = undefined;
      if (ready.installs === this.installs && ready.point.index > this.storage.snapshot().metadata.index) {
        this.storage.createSnapshot(ready.point.index, ready.point.confState, ready.data);
        await this.saveSnapshot(ready);
      }
      return;
    }
    if (this.diskFull !== undefined || Date.now() < this.snapshotRetryAt) return;
    // A snapshot taken earlier whose disk write failed is saved again rather than taken twice.
    // (Unless the leader sent a newer one meanwhile, which it must not overwrite on disk.)
    const unsaved = this.snapshotUnsaved;
    if (unsaved !== undefined) {
      if (unsaved.installs !== this.installs) this.snapshotUnsaved = undefined;
      else await this.saveSnapshot(unsaved);
      return;
    }
    if (this.snapshotEncoding) return;
    const every = this.options.snapshotEvery ?? 50_000;
    const bytes = this.options.snapshotBytes ?? 64 * 1024 * 1024;
    const appliedSince = this.store.appliedIndex - this.lastSnapshotIndex;
    if (appliedSince <= 0 || (appliedSince < every && this.disk.bytesSinceSnapshot() < bytes)) return;
    const point = this.raw.snapshotPoint();
    if (point.index <= this.storage.snapshot().metadata.index) return;
    const state = { kv: this.store.toSnapshot(), members: [...this.members], clusterId: this.clusterId, retired: [...this.retiredIds] } satisfies StateSnapshot;
    const installs = this.installs;
    this.snapshotEncoding = true;
    void (async () => {
      try {
        const data = await encodeSnapshotAsync(state);
        // Written here too, not in the loop: 1 s of writes for 70 MB during which a leader that
        // waited on them would send no heartbeats. Only the record pointing at them (short) is
        // written by the loop, in saveSnapshot.
        try {
          await this.disk.writeSnapshotPieces(point.index, data);
        } catch (err) {
          // A full disk (which the loop's own writes will meet and raise), or the database
          // reopened or closed meanwhile: not needed for safety, the log still holds everything.
          if (!this.closed) {
            this.snapshotRetryAt = Date.now() + 10_000;
            this.options.logger.warn({ err: (err as Error).message }, 'could not write a snapshot; trying again later');
          }
          return;
        }
        this.snapshotReady = { point, data, installs };
      } catch (err) {
        this.fail(err as Error);
      } finally {
        this.snapshotEncoding = false;
        this.schedule();
      }
    })();
  }

  private async saveSnapshot(job: SnapshotJob): Promise<void> {
    try {
      await this.disk.commitSnapshot(job.point, job.data.byteLength);
      this.snapshotUnsaved = undefined;
      const upTo = Math.max(0, job.point.index - (this.options.keepEntries ?? 5_000));
      this.storage.compact(Math.max(upTo, this.storage.firstIndex() - 1));
      await this.disk.compact(upTo);
      this.lastSnapshotIndex = job.point.index;
      this.options.logger.info({ index: job.point.index, compactedTo: upTo }, 'took a snapshot and compacted the log');
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // Not needed for safety (the log still holds everything): try again later.
      this.snapshotUnsaved = job;
      this.snapshotRetryAt = Date.now() + 10_000;
      this.options.logger.warn({ err: (err as Error).message }, 'could not save a snapshot: the disk is full; trying again later');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Alarms.

  /**
   * What this master applied differs from what a majority applied (HashCheck), or it was found
   * so before it restarted. It stops serving, ends its watches, never campaigns again, hands
   * leadership over, and records the alarm in its data directory so a restart keeps it.
   */
  private raiseCorrupt(message: string, since = new Date().toISOString()): void {
    if (this.corrupt !== undefined) return;
    this.corrupt = { type: 'CORRUPT', message, since };
    this.options.logger.error(
      { alarm: 'CORRUPT' },
      `CORRUPT: ${message}. This master answers no requests and will not lead; remove it from the cluster and add it back with an empty data directory${this.options.rejoinHint === undefined ? '' : ` (${this.options.rejoinHint})`}`,
    );
    this.raw.refuseCampaigns(message);
    const err = new KvError('corrupt', `this master does not serve: CORRUPT: ${message}`);
    this.writes.failAll(err);
    this.reads.failAll(err);
    this.watches.endAll(err);
    if (this.isLeader) this.handOver();
    if (this.identity.current.corrupt === undefined) {
      this.identity.current = { ...this.identity.current, corrupt: { message, since } };
      this.disk.writeRecord('identity', this.identity.current).catch((e: unknown) => this.options.logger.warn({ err: (e as Error).message }, 'could not record the CORRUPT alarm'));
    }
    this.emit('alarms', this.alarms());
    this.schedule();
  }

  /** A corrupt leader hands over to the most up-to-date other voter that reports no alarm. */
  private handOver(): void {
    const status = this.raw.status();
    if (status.leadTransferee !== '') return;
    const alarmed = new Set([...this.hashCheck.peersWithAlarm('CORRUPT'), ...this.hashCheck.peersWithAlarm('DISKFULL')]);
    let best: NodeId | undefined;
    let match = -1;
    for (const [id, pr] of status.progress ?? []) {
      if (id === this.id || pr.isLearner || alarmed.has(id) || pr.match <= match) continue;
      best = id;
      match = pr.match;
    }
    if (best === undefined) return;
    try {
      this.raw.transferLeadership(best);
    } catch (err) {
      if (!isRaftError(err)) throw err;
    }
  }

  /** Refuses a write that would add data beyond the quota, or that a majority's full disks cannot take. */
  private assertRoom(req: WriteRequest): void {
    const growth = growthOf(req);
    if (growth === 0) return;
    this.refreshNospace();
    const size = this.store.sizeBytes;
    if (this.nospace !== undefined || size + growth > this.quota) {
      if (this.nospace === undefined) {
        this.nospace = { type: 'NOSPACE', message: `the store's data reached its quota (${formatBytes(size)} of ${formatBytes(this.quota)})`, since: new Date().toISOString() };
        this.options.logger.warn({ alarm: 'NOSPACE', size, quota: this.quota }, `NOSPACE: ${this.nospace.message}; writes that add data are refused until it is below ${formatBytes(clearsBelow(this.quota))}`);
        this.emit('alarms', this.alarms());
      }
      throw new KvError(
        'no-space',
        `database space exceeded (NOSPACE): the store holds ${formatBytes(size)} of its ${formatBytes(this.quota)} quota; delete keys and compact to free space (writes that add data are refused until it is below ${formatBytes(clearsBelow(this.quota))}), or raise store.quotaBytes in the cluster file`,
      );
    }
    const full = this.hashCheck.peersWithAlarm('DISKFULL');
    const voters = this.raw.confState().voters;
    if (full.length >= Math.floor(voters.length / 2) + 1) {
      throw new KvError('no-space', `the disks of ${full.join(', ')} (a majority of the masters) are full: the cluster cannot commit anything until space is freed there`);
    }
  }

  private refreshNospace(): void {
    if (this.nospace !== undefined && this.store.sizeBytes < clearsBelow(this.quota)) {
      this.options.logger.info({ alarm: 'NOSPACE', size: this.store.sizeBytes }, 'NOSPACE cleared: the store is below its quota again');
      this.nospace = undefined;
      this.emit('alarms', this.alarms());
    }
  }

  // ---------------------------------------------------------------------------------------

  private assertLeader(what: string): void {
    if (!this.isLeader) throw new KvError('not-leader', `${what} are made by the leader${this.leader === null ? '; none is known yet' : `, ${this.leader}`}`, this.leader ?? undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new KvError('closed', 'this master is shutting down');
  }

  private assertServing(): void {
    const err = this.notServing();
    if (err !== undefined) throw err;
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
    await this.transport.close();
    // Let an in-progress Ready finish its disk write before closing the database.
    while (this.running) await new Promise((r) => setTimeout(r, 5));
    await this.disk.close();
  }
}

/** The index of the first normal entry in an append message whose payload fails its checksum. */
function damagedEntry(m: unknown): number | undefined {
  const msg = m as Partial<Message> | null;
  if (typeof msg !== 'object' || msg === null) return undefined;
  let entries: unknown;
  if (msg.type === 'append') entries = (msg as { entries?: unknown }).entries;
  else if (msg.type === 'propose') entries = (msg as { proposals?: unknown }).proposals;
  else return undefined;
  if (!Array.isArray(entries)) return undefined;
  for (const e of entries as { type?: unknown; data?: unknown; index?: unknown }[]) {
    if (e?.type === 'normal' && e.data instanceof Uint8Array && e.data.byteLength > 0 && !payloadIntact(e.data)) return typeof e.index === 'number' ? e.index : 0;
  }
  return undefined;
}

function decodeState(snapshot: Snapshot, path: string): StateSnapshot {
  try {
    return decodeSnapshot(snapshot.data) as StateSnapshot;
  } catch (err) {
    throw damagedError(path, `the snapshot at index ${snapshot.metadata.index}: ${(err as Error).message}`);
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

// The data the Raft core exchanges with its host: log entries, messages, persistent state,
// snapshots and the Ready batch. Every type here is plain data so the host can encode it
// (packages/wire uses msgpackr) and store it (packages/store uses level) without adapters.

/**
 * A member's name, e.g. "m1". Raft itself never sees a name reused; a host that lets a removed
 * member come back under its old name (empty, as a new member) must tell the incarnations
 * apart itself (packages/store does, with the member id in its data directory).
 */
export type NodeId = string;

/** Marks "no node" in `vote` and `leader`, as etcd's `None`. */
export const NONE: NodeId = '';

/**
 * The largest term a message may carry, and the last one a node campaigns in. Terms are
 * JavaScript numbers: keeping them a long way below 2^53 means `term + 1` is always exact,
 * and since peers may only step a bounded amount above us (RaftConfig.maxTermStep), no
 * frame can carry the cluster to a term from which it could never elect again.
 */
export const MAX_TERM = 2 ** 52;

/**
 * One membership change, applied one server at a time (thesis §4.1): a change is appended only
 * after the previous one has been applied, so any two consecutive configurations share a
 * majority.
 */
export type ConfChange = {
  readonly type: 'addVoter' | 'addLearner' | 'removeNode';
  readonly nodeId: NodeId;
  /** Opaque to Raft, replicated with the change: hosts put the member's address here. */
  readonly context?: Uint8Array;
};

export type ConfChangeType = ConfChange['type'];

/** The membership as of some log index. Learners receive the log but neither vote nor count. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What a client hands to propose(): the log index and term are assigned by the leader. */
export type Proposal =
  | { readonly type: 'normal'; readonly data: Uint8Array }
  | { readonly type: 'confChange'; readonly change: ConfChange };

/** A log entry (§5.3). An empty `normal` entry is the no-op a new leader appends (§5.4.2). */
export type Entry = { readonly index: number; readonly term: number } & Proposal;

/** The state that must be on stable storage before any message depending on it is sent (§5.1). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** The state machine's image at `metadata.index`, replacing every entry up to it (§7). */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the host may want to show or react to (leader-changed events). */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A linearizable read point: once the host has applied `index`, it may serve read `ctx`. */
export interface ReadState {
  readonly index: number;
  readonly ctx: string;
}

// ---------------------------------------------------------------------------------------
// Messages. Each carries the sender's term; a discriminated union keeps every field typed.

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries (§5.3): `index`/`logTerm` name the entry preceding `entries`. */
export interface AppendMessage extends MessageBase {
  readonly type: 'append';
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Reply to `append` (and to a finished snapshot). On success `index` is the follower's last
 * matching index. On rejection `index` echoes the rejected `append.index` and
 * `rejectHint`/`logTerm` point at the follower's last entry with term <= the probe's term,
 * so the leader can skip a whole term per round trip (the fast back-off of §5.3).
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: 'appendResponse';
  readonly index: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly logTerm: number;
}

/** Heartbeat; `readSeq` lets ReadIndex count acknowledgements of this round (thesis §6.4). */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly readSeq: number;
}

/** Echoes the heartbeat's `readSeq`, and tells the leader how far the follower knows the log is committed. */
export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly readSeq: number;
  readonly commit: number;
}

/**
 * RequestVote (§5.2) and its pre-vote twin (thesis §9.6). A pre-vote carries the term the
 * sender would campaign in but changes no one's term. `transfer` marks a campaign started by
 * TimeoutNow, which voters honour even while they believe a leader is alive (thesis §3.10).
 */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly index: number;
  readonly logTerm: number;
  readonly transfer: boolean;
}

/**
 * A vote (or pre-vote) reply. It also carries the voter's commit index and that entry's term:
 * a candidate whose log holds the same entry may adopt the commit index (Log Matching makes
 * the prefixes identical). This is how a survivor learns that its last leader's removal
 * committed when only the removed member knows: otherwise it would go on counting that
 * member's vote, which a removed member that holds a longer log would never give.
 */
export interface VoteResponseMessage extends MessageBase {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
  readonly commit: number;
  readonly commitTerm: number;
}

/**
 * One chunk of InstallSnapshot (§7, Figure 13): `offset` is the byte position of `data`
 * within the snapshot's data; `done` marks the last chunk.
 */
export interface SnapshotMessage extends MessageBase {
  readonly type: 'snapshot';
  readonly metadata: SnapshotMetadata;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly done: boolean;
  /** RaftConfig.checksum of `data`: a chunk that does not match is treated as never received. */
  readonly checksum: number;
}

/**
 * Reply to the snapshot chunk at `offset`: how many bytes of the snapshot at `snapshotIndex`
 * the follower holds so far. The leader acts only on the reply to its outstanding chunk, so
 * duplicated or reordered replies cannot multiply the chunks in flight.
 */
export interface SnapshotResponseMessage extends MessageBase {
  readonly type: 'snapshotResponse';
  readonly snapshotIndex: number;
  readonly offset: number;
  readonly received: number;
}

/** Leadership transfer: the receiver starts an election at once (thesis §3.10). */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A follower asking the leader for a read index on behalf of its client (thesis §6.4). */
export interface ReadIndexMessage extends MessageBase {
  readonly type: 'readIndex';
  readonly ctx: string;
}

export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly ctx: string;
  readonly index: number;
}

/** Proposals a follower forwards to the leader it knows. */
export interface ProposeMessage extends MessageBase {
  readonly type: 'propose';
  readonly proposals: readonly Proposal[];
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | ProposeMessage;

export type MessageType = Message['type'];

export const MESSAGE_TYPES: readonly MessageType[] = [
  'append',
  'appendResponse',
  'heartbeat',
  'heartbeatResponse',
  'vote',
  'preVote',
  'voteResponse',
  'preVoteResponse',
  'snapshot',
  'snapshotResponse',
  'timeoutNow',
  'readIndex',
  'readIndexResponse',
  'propose',
];

// ---------------------------------------------------------------------------------------

/**
 * What the host must do, in this order (etcd's doc.go, and §5.1 "respond to RPCs" only after
 * persisting): 1. persist `hardState`, `entries` (replacing any conflicting suffix) and
 * `snapshot`, with fsync when `mustSync`; 2. send `messages`; 3. install `snapshot` into the
 * state machine, then apply `committedEntries` in order; 4. call `advance()`.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when the term, vote or log changed: the write must reach the disk before sending. */
  readonly mustSync: boolean;
}

/** What `propose` did with a proposal. */
export type ProposeResult =
  | { readonly kind: 'appended'; readonly index: number; readonly term: number }
  | { readonly kind: 'forwarded'; readonly leader: NodeId };

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Only on the leader: how far each member's log matches its own. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | undefined;
}

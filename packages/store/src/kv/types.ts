// The key-value API, typed once and shared by the state machine, the host, the wire protocol
// and the client. Shapes follow etcd's v3 API (revisions, ranges, transactions, leases,
// watches), with string keys and byte values.

/** A stored key at one revision. `lease` is 0 when no lease is attached. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  /** Revision of the put that created this incarnation of the key. */
  readonly createRevision: number;
  /** Revision of the last change to the key. */
  readonly modRevision: number;
  /** Number of puts since the key was (re)created; 1 for the first. */
  readonly version: number;
  readonly lease: number;
}

/**
 * Which keys an operation covers: exactly `key`, or every key starting with `key` (`prefix`),
 * or the half-open interval [key, end).
 */
export interface KeyRange {
  readonly key: string;
  readonly prefix?: boolean;
  readonly end?: string;
}

export interface RangeRequest extends KeyRange {
  /** Read the store as it was at this revision (0 or absent: the current revision). */
  readonly revision?: number;
  /** At most this many keys (0 or absent: no limit). */
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
}

export interface RangeResponse {
  readonly kvs: KeyValue[];
  /** How many keys matched in all, before `limit`. */
  readonly count: number;
  /** Whether `limit` cut the result short. */
  readonly more: boolean;
  /** The store revision the read saw. */
  readonly revision: number;
}

export interface PutRequest {
  readonly key: string;
  readonly value: Uint8Array;
  /** Attach the key to this lease (0 or absent: none). */
  readonly lease?: number;
  /** Return the previous value in the response. */
  readonly prevKv?: boolean;
}

export interface PutResponse {
  readonly revision: number;
  readonly prevKv?: KeyValue;
}

export interface DeleteRangeRequest extends KeyRange {
  readonly prevKv?: boolean;
}

export interface DeleteRangeResponse {
  readonly revision: number;
  readonly deleted: number;
  readonly prevKvs?: KeyValue[];
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
export type CompareResult = 'equal' | 'notEqual' | 'less' | 'greater';

/**
 * One condition of a transaction, on one key. A missing key has version, createRevision,
 * modRevision and lease 0 and compares as less than any value.
 */
export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly result: CompareResult;
  /** Bytes for `value`, a number for the other targets. */
  readonly value: Uint8Array | number;
}

export type RequestOp =
  | ({ readonly op: 'range' } & RangeRequest)
  | ({ readonly op: 'put' } & PutRequest)
  | ({ readonly op: 'deleteRange' } & DeleteRangeRequest);

export type ResponseOp =
  | ({ readonly op: 'range' } & RangeResponse)
  | ({ readonly op: 'put' } & PutResponse)
  | ({ readonly op: 'deleteRange' } & DeleteRangeResponse);

/** If every comparison holds, `success` runs, else `failure`; atomically, at one revision. */
export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly RequestOp[];
  readonly failure: readonly RequestOp[];
}

export interface TxnResponse {
  readonly revision: number;
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
}

export interface LeaseGrantRequest {
  /** Time to live in seconds, counted by the leader from the grant or the last keep-alive. */
  readonly ttl: number;
  /** A chosen id (0 or absent: the store assigns one). */
  readonly id?: number;
}

export interface LeaseGrantResponse {
  readonly id: number;
  readonly ttl: number;
  readonly revision: number;
}

export interface LeaseRevokeResponse {
  readonly revision: number;
  /** Keys deleted because they were attached to the lease. */
  readonly deleted: number;
}

export interface LeaseKeepAliveResponse {
  readonly id: number;
  readonly ttl: number;
}

export interface CompactResponse {
  readonly revision: number;
}

export type EventType = 'put' | 'delete';

/** One change seen by a watcher. For a delete, `kv` holds the key and the deletion revision. */
export interface WatchEvent {
  readonly type: EventType;
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

export interface WatchRequest extends KeyRange {
  /** Deliver events from this revision on (0 or absent: only future ones). */
  readonly startRevision?: number;
  /** Include each event's previous value. */
  readonly prevKv?: boolean;
}

/** A write, as replicated through the Raft log. */
export type WriteRequest =
  | ({ readonly type: 'put' } & PutRequest)
  | ({ readonly type: 'deleteRange' } & DeleteRangeRequest)
  | ({ readonly type: 'txn' } & TxnRequest)
  | ({ readonly type: 'leaseGrant' } & LeaseGrantRequest)
  | { readonly type: 'leaseRevoke'; readonly id: number }
  | { readonly type: 'leaseKeepAlive'; readonly id: number }
  | { readonly type: 'compact'; readonly revision: number };

export type WriteResponse = PutResponse | DeleteRangeResponse | TxnResponse | LeaseGrantResponse | LeaseRevokeResponse | LeaseKeepAliveResponse | CompactResponse;

/**
 * Identifies a client's write so that a retry is applied at most once (thesis §6.3): the state
 * machine remembers the response to each `seq` of `client` until the client reports, through
 * `firstUnacked`, that it has seen every response below that number.
 */
export interface Session {
  readonly client: string;
  readonly seq: number;
  readonly firstUnacked: number;
}

/** The payload of a Raft log entry. */
export interface Command {
  readonly session?: Session;
  readonly request: WriteRequest;
  /** Apply only if the entry's Raft term is this one (see KvErrorCode 'fenced'). */
  readonly fence?: number;
}

// @flotilla/store: the replicated key-value store (the role etcd plays in Kubernetes): the
// Raft host with its durable log, the MVCC state machine, the peer transport, and the client.

export { KvError, isKvError, KV_ERROR_CODES, type KvErrorCode } from './errors.ts';
export { MvccStore, type ApplyOutcome, type MvccSnapshot, type RevisionEvents } from './kv/mvcc.ts';
export { boundsOf, prefixEnd, MAX_KEY_BYTES, MAX_VALUE_BYTES, type Bounds } from './kv/keyrange.ts';
export type * from './kv/types.ts';
export { validateWrite, validateRange, validateWatch, validateSession } from './kv/validate.ts';
export { StoreNode, type StoreOptions, type StoreStatus, type LeaderChange, type Alarm, type AlarmType } from './node.ts';
export { KvServer, type KvServerOptions } from './server.ts';
export { KvClient, type KvClientOptions, type Watch, type WatchHandler } from './client.ts';
export { DiskLog } from './disk.ts';
export { seal, unseal, checksum } from './integrity.ts';
export { encodeCommand, decodePayload } from './codec.ts';
export { quorumsFor, Incarnations, type Identity, type Hello, type Admission } from './identity.ts';
export { HashCheck, AppliedHashes } from './hash-check.ts';
export type { WatchSink } from './watch-hub.ts';

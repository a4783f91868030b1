export const KV_ERROR_CODES = [
  /** The request needs a leader and this master knows none (an election is under way). */
  'not-leader',
  /** No answer within the operation's deadline; a write may or may not have been applied. */
  'timeout',
  /** The revision asked for was compacted away; re-read the current state. */
  'compacted',
  /** The revision asked for is newer than the store. */
  'future-revision',
  /** No master could be reached, or the master is shutting down. */
  'unavailable',
  /** The lease does not exist (it expired or was revoked). */
  'lease-not-found',
  /** The request is malformed; the message says which field. */
  'invalid-request',
  /** The request or its result exceeds a size limit. */
  'too-large',
  /** The client or store was closed. */
  'closed',
  /** A watcher did not keep up with its events and was cancelled; watch again from its last revision. */
  'slow-consumer',
  /**
   * The cluster no longer remembers this client's session (it keeps the most recently used
   * ones), so it cannot tell whether an earlier attempt of the write was applied: the write
   * was refused; check the state and write again (the client starts a new session).
   */
  'session-expired',
  /**
   * The write was fenced to a Raft term (the leader-only loops fence theirs to the term they
   * lead in) and reached the log in a later term: that leadership is over, so it was not applied.
   */
  'fenced',
  /**
   * This master's data is damaged: a checksum does not match, or what it applied differs from
   * what the other masters applied (the CORRUPT alarm). It does not answer; remove it and add
   * it back empty, or restore from a snapshot.
   */
  'corrupt',
  /**
   * The store is full (the NOSPACE alarm: its data reached the quota, or the disks of a majority
   * of the masters are full): writes that add data are refused; reads, deletes and compaction
   * still work.
   */
  'no-space',
  /**
   * The data directory cannot be used as it is: it belongs to another member or cluster, was
   * written by an older Flotilla, or is empty while the cluster remembers this member with data
   * it no longer has. The message says what to do.
   */
  'wrong-data-dir',
] as const;

export type KvErrorCode = (typeof KV_ERROR_CODES)[number];

/** The one error class of the store package; callers switch on `code`. */
export class KvError extends Error {
  override readonly name = 'KvError';
  constructor(
    readonly code: KvErrorCode,
    message: string,
    /** With `not-leader`: the leader, when known. */
    readonly leader?: string,
  ) {
    super(message);
  }
}

export function isKvError(err: unknown, code?: KvErrorCode): err is KvError {
  return err instanceof KvError && (code === undefined || err.code === code);
}

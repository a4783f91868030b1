import type { NodeId } from './types.ts';

export const RAFT_ERROR_CODES = [
  /** The call needs the leader; `leader` names it when known. */
  'not-leader',
  /** The leader did not take the proposal (transfer in progress, too much uncommitted data). */
  'proposal-dropped',
  /** A membership change is already in the log and not yet applied (thesis §4.1). */
  'conf-change-pending',
  /** The membership change makes no sense against the current configuration. */
  'invalid-conf-change',
  /** A learner cannot be promoted until its log has caught up (thesis §4.2.1). */
  'learner-not-caught-up',
  /** A message was malformed or inconsistent with the log; it was not applied. */
  'invalid-message',
  /** The requested entries were compacted away; a snapshot is needed instead. */
  'compacted',
  /** The requested entries are beyond the end of the log. */
  'unavailable',
  /** A snapshot older than the one already held. */
  'snapshot-out-of-date',
  /** A call was made out of order, e.g. `ready()` twice without `advance()`. */
  'invalid-state',
  /** A configuration value is out of range. */
  'invalid-config',
] as const;

export type RaftErrorCode = (typeof RAFT_ERROR_CODES)[number];

/** The one error class of this package; callers switch on `code`, never on the message. */
export class RaftError extends Error {
  override readonly name = 'RaftError';
  readonly code: RaftErrorCode;
  /** Set with `not-leader` when this node knows who leads. */
  readonly leader: NodeId | undefined;

  constructor(code: RaftErrorCode, message: string, leader?: NodeId) {
    super(message);
    this.code = code;
    this.leader = leader;
  }
}

export function isRaftError(err: unknown, code?: RaftErrorCode): err is RaftError {
  return err instanceof RaftError && (code === undefined || err.code === code);
}

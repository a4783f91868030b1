// @flotilla/raft: Raft consensus as a pure, deterministic state machine.
// The host drives a RawNode (tick, step, propose, readIndex, ready/advance) and owns every
// clock, disk and socket. See docs/ARCHITECTURE.md.

export { RawNode } from './rawnode.ts';
export type { RaftConfig } from './config.ts';
export { RaftError, isRaftError, RAFT_ERROR_CODES, type RaftErrorCode } from './errors.ts';
export { MemoryStorage, bootstrapState, entrySize, type Storage } from './storage.ts';
export { SeededRandom, type RandomSource } from './rand.ts';
export { validateMessage } from './validate.ts';
export { NONE, MAX_TERM, MESSAGE_TYPES } from './types.ts';
export { crc32c } from './checksum.ts';
export type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  MessageType,
  NodeId,
  ProgressState,
  ProgressStatus,
  ProposeResult,
  Proposal,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotMessage,
  SnapshotMetadata,
  SnapshotResponseMessage,
  SoftState,
  Status,
  TimeoutNowMessage,
  VoteMessage,
  VoteResponseMessage,
  ProposeMessage,
} from './types.ts';

import { RaftError } from './errors.ts';
import { crc32c } from './checksum.ts';
import type { RandomSource } from './rand.ts';
import type { Storage } from './storage.ts';
import type { NodeId } from './types.ts';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** The seeded source of randomized election timeouts; never Math.random (see rand.ts). */
  readonly random: RandomSource;
  /** T: a follower campaigns after a random timeout in [T, 2T) ticks without a leader (§5.2). */
  readonly electionTick: number;
  /** The leader sends heartbeats every this many ticks; must be less than electionTick. */
  readonly heartbeatTick: number;
  /** Run a pre-vote before each election so a rejoining node cannot depose a healthy leader (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a majority for an election timeout steps down, and followers ignore votes while a leader is alive (thesis §6.2, §4.2.3). Default true. */
  readonly checkQuorum?: boolean;
  /** Upper bound on the entry bytes in one append message; at least one entry is always sent. Default 1 MiB. */
  readonly maxSizePerMsg?: number;
  /** Append messages in flight to one follower before the leader waits for replies. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Bytes of proposals the leader holds uncommitted before it drops new ones; 0 for no limit. Default 0. */
  readonly maxUncommittedEntriesSize?: number;
  /** Upper bound on the committed entry bytes handed out in one Ready. Default 64 MiB. */
  readonly maxCommittedSizePerReady?: number;
  /** Bytes of snapshot data per InstallSnapshot chunk. Default 1 MiB. */
  readonly snapshotChunkSize?: number;
  /** When true a follower rejects proposals with `not-leader` instead of forwarding them. Default false. */
  readonly disableProposalForwarding?: boolean;
  /** How many entries behind the commit index a learner may be and still be promoted. Default 64. */
  readonly learnerCatchUpLag?: number;
  /**
   * How far above our own term a peer's message may be and still be taken as it is (default
   * 2^20). A term grows by one per election, so a bigger jump is no real election: the message
   * is ignored and we only move our own term up by this much, so that no frame can push a
   * member more than this towards the end of the term space (see Raft.stepTowards).
   */
  readonly maxTermStep?: number;
  /** The checksum of snapshot chunks (default CRC-32C); every member must use the same function. */
  readonly checksum?: (data: Uint8Array) => number;
}

export type ResolvedConfig = Required<RaftConfig>;

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RaftError('invalid-config', `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Fills in defaults and checks every value; throws RaftError `invalid-config`. */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
  if (typeof config.id !== 'string' || config.id.length === 0) {
    throw new RaftError('invalid-config', 'id must be a non-empty node id');
  }
  const electionTick = positiveInteger(config.electionTick, 'electionTick');
  const heartbeatTick = positiveInteger(config.heartbeatTick, 'heartbeatTick');
  if (heartbeatTick >= electionTick) {
    throw new RaftError(
      'invalid-config',
      `heartbeatTick (${heartbeatTick}) must be less than electionTick (${electionTick}), or followers time out between heartbeats`,
    );
  }
  const maxUncommitted = config.maxUncommittedEntriesSize ?? 0;
  if (!Number.isSafeInteger(maxUncommitted) || maxUncommitted < 0) {
    throw new RaftError('invalid-config', `maxUncommittedEntriesSize must be 0 or more, got ${maxUncommitted}`);
  }
  const lag = config.learnerCatchUpLag ?? 64;
  if (!Number.isSafeInteger(lag) || lag < 0) {
    throw new RaftError('invalid-config', `learnerCatchUpLag must be 0 or more, got ${lag}`);
  }
  const maxTermStep = positiveInteger(config.maxTermStep ?? 2 ** 20, 'maxTermStep');
  return {
    id: config.id,
    storage: config.storage,
    random: config.random,
    electionTick,
    heartbeatTick,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    maxSizePerMsg: positiveInteger(config.maxSizePerMsg ?? 1024 * 1024, 'maxSizePerMsg'),
    maxInflightMsgs: positiveInteger(config.maxInflightMsgs ?? 256, 'maxInflightMsgs'),
    maxUncommittedEntriesSize: maxUncommitted,
    maxCommittedSizePerReady: positiveInteger(config.maxCommittedSizePerReady ?? 64 * 1024 * 1024, 'maxCommittedSizePerReady'),
    snapshotChunkSize: positiveInteger(config.snapshotChunkSize ?? 1024 * 1024, 'snapshotChunkSize'),
    disableProposalForwarding: config.disableProposalForwarding ?? false,
    learnerCatchUpLag: lag,
    maxTermStep,
    checksum: config.checksum ?? crc32c,
  };
}

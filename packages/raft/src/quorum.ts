import type { NodeId } from './types.ts';

/** The smallest number of voters that forms a majority (§5.2). */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that at least a majority of `voters` have (each voter's index given by
 * `indexOf`): the leader's candidate commit index (§5.3), and for ReadIndex the newest
 * heartbeat round a majority acknowledged. 0 for an empty voter set.
 */
export function quorumIndex(voters: ReadonlySet<NodeId>, indexOf: (id: NodeId) => number): number {
  if (voters.size === 0) return 0;
  const indexes: number[] = [];
  for (const id of voters) indexes.push(indexOf(id));
  indexes.sort((a, b) => b - a);
  return indexes[majority(voters.size) - 1]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** The outcome of an election given the responses so far; non-voters' responses do not count. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(voters.size);
  if (granted >= q) return 'won';
  if (rejected > voters.size - q) return 'lost';
  return 'pending';
}

// OwnerSpread: spread the pods of one controller (same controller ownerReference uid, e.g. one
// ReplicaSet) across nodes, as Kubernetes' SelectorSpread did: a node's raw score is how many
// of the owner's pods it already has (bound or assumed), reversed so the emptiest node gets
// 100 and the fullest 0. A pod without a controller scores every node the same.
import type { ScorePlugin } from '../framework/types.ts';
import { reverseNormalize } from './normalize.ts';

export const NAME = 'OwnerSpread';

export const ownerSpread = {
  name: NAME,
  score(pod, node) {
    return pod.ownerUid === undefined ? 0 : (node.ownerCounts.get(pod.ownerUid) ?? 0);
  },
  normalizeScore(_pod, scores) {
    reverseNormalize(scores);
  },
} satisfies ScorePlugin;

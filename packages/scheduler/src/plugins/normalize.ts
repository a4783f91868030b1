// Kubernetes' helper.DefaultNormalizeScore with reverse=true: raw scores are "how bad"
// (counts); the node with the most gets 0, a node with none gets MaxNodeScore.
import { MAX_NODE_SCORE } from '../framework/types.ts';

export function reverseNormalize(scores: number[]): void {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  for (let i = 0; i < scores.length; i++) scores[i] = max === 0 ? MAX_NODE_SCORE : MAX_NODE_SCORE - Math.floor((MAX_NODE_SCORE * scores[i]!) / max);
}

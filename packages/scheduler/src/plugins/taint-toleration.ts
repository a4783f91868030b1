// TaintToleration: a NoSchedule or NoExecute taint the pod does not tolerate keeps it off the
// node; PreferNoSchedule taints only lower the node's score (fewer untolerated ones is better),
// as in Kubernetes' plugins/tainttoleration.
import type { Taint } from '@flotilla/api';
import { SUCCESS, unresolvable } from '../framework/status.ts';
import type { FilterPlugin, ScorePlugin } from '../framework/types.ts';
import { reverseNormalize } from './normalize.ts';
import { tolerated } from './tolerations.ts';

export const NAME = 'TaintToleration';

/** kube-scheduler's wording, e.g. "node(s) had untolerated taint {node.kubernetes.io/unreachable: }". */
export function untoleratedTaintReason(t: Taint): string {
  return `node(s) had untolerated taint {${t.key}: ${t.value ?? ''}}`;
}

export const taintToleration = {
  name: NAME,
  filter(pod, node) {
    const tolerations = pod.pod.spec.tolerations;
    for (const taint of node.taints) {
      if (taint.effect === 'PreferNoSchedule') continue;
      if (!tolerated(tolerations, taint)) return unresolvable(untoleratedTaintReason(taint));
    }
    return SUCCESS;
  },
  score(pod, node) {
    let n = 0;
    for (const taint of node.taints) if (taint.effect === 'PreferNoSchedule' && !tolerated(pod.pod.spec.tolerations, taint)) n++;
    return n;
  },
  normalizeScore(_pod, scores) {
    reverseNormalize(scores);
  },
} satisfies FilterPlugin & ScorePlugin;

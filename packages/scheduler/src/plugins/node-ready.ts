// NodeReady: only a node whose Ready condition is True takes new pods. Kubernetes reaches the
// same end through taints the node lifecycle controller adds (node.kubernetes.io/not-ready,
// .../unreachable); checking the condition itself keeps a not-yet-tainted node safe too.
// The reason is the one kube-scheduler's CheckNodeCondition predicate used.
import { SUCCESS, unresolvable } from '../framework/status.ts';
import type { FilterPlugin } from '../framework/types.ts';

export const NAME = 'NodeReady';
export const ERR_REASON_NOT_READY = 'node(s) were not ready';

export const nodeReady = {
  name: NAME,
  filter(_pod, node) {
    return node.ready ? SUCCESS : unresolvable(ERR_REASON_NOT_READY);
  },
} satisfies FilterPlugin;

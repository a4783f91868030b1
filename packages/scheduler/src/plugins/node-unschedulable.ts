// NodeUnschedulable: a cordoned node (spec.unschedulable) takes no new pods, unless the pod
// tolerates the node.kubernetes.io/unschedulable:NoSchedule taint (as DaemonSet pods do).
import { SUCCESS, unresolvable } from '../framework/status.ts';
import type { FilterPlugin } from '../framework/types.ts';
import { tolerated } from './tolerations.ts';

export const NAME = 'NodeUnschedulable';
export const ERR_REASON_UNSCHEDULABLE = 'node(s) were unschedulable';

const UNSCHEDULABLE_TAINT = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' } as const;

export const nodeUnschedulable = {
  name: NAME,
  filter(pod, node) {
    if (!node.unschedulable || tolerated(pod.pod.spec.tolerations, UNSCHEDULABLE_TAINT)) return SUCCESS;
    return unresolvable(ERR_REASON_UNSCHEDULABLE);
  },
} satisfies FilterPlugin;

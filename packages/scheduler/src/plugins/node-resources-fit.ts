// NodeResourcesFit: the pod's requests must fit in what the node's allocatable leaves after
// the requests of every pod on it (bound or assumed). As in Kubernetes' fitsRequest, a
// resource the pod does not request is not checked, and each short resource is its own reason.
import { SUCCESS, unschedulable } from '../framework/status.ts';
import type { FilterPlugin } from '../framework/types.ts';

export const NAME = 'NodeResourcesFit';

export const nodeResourcesFit = {
  name: NAME,
  filter(pod, node) {
    const want = pod.requests;
    const a = node.allocatable;
    const used = node.requested;
    let reasons: string[] | undefined;
    if (node.pods.size + 1 > a.pods) (reasons ??= []).push('Too many pods');
    if (want.milliCpu > 0 && want.milliCpu > a.milliCpu - used.milliCpu) (reasons ??= []).push('Insufficient cpu');
    if (want.memory > 0 && want.memory > a.memory - used.memory) (reasons ??= []).push('Insufficient memory');
    return reasons === undefined ? SUCCESS : unschedulable(...reasons);
  },
} satisfies FilterPlugin;

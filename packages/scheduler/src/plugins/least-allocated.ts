// NodeResourcesLeastAllocated (NodeResourcesFit's default scoring strategy): prefer the node
// with the most room left after placing the pod, CPU and memory weighted equally. Uses the
// non-zero requests, so pods that request nothing still spread (Kubernetes does the same).
import type { ScorePlugin } from '../framework/types.ts';
import { MAX_NODE_SCORE } from '../framework/types.ts';

export const NAME = 'NodeResourcesLeastAllocated';

function leastRequested(requested: number, capacity: number): number {
  if (capacity === 0 || requested > capacity) return 0;
  return ((capacity - requested) * MAX_NODE_SCORE) / capacity;
}

export const leastAllocated = {
  name: NAME,
  score(pod, node) {
    const cpu = leastRequested(node.nonZeroRequested.milliCpu + pod.nonZeroRequests.milliCpu, node.allocatable.milliCpu);
    const mem = leastRequested(node.nonZeroRequested.memory + pod.nonZeroRequests.memory, node.allocatable.memory);
    return Math.floor((cpu + mem) / 2);
  },
} satisfies ScorePlugin;

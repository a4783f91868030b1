// NodeResourcesBalancedAllocation: prefer the node whose CPU and memory would be used in the
// most similar proportions after placing the pod, so neither runs out while the other idles.
// Kubernetes' formula for two resources: score = (1 - |cpuFraction - memFraction| / 2) * 100,
// fractions capped at 1. A pod that requests nothing does not tip the balance: every node
// scores the same for it (Kubernetes skips the plugin then).
import type { ScorePlugin } from '../framework/types.ts';
import { MAX_NODE_SCORE } from '../framework/types.ts';

export const NAME = 'NodeResourcesBalancedAllocation';

function fraction(requested: number, capacity: number): number {
  return capacity === 0 ? 1 : Math.min(1, requested / capacity);
}

export const balancedAllocation = {
  name: NAME,
  score(pod, node) {
    if (pod.requests.milliCpu === 0 && pod.requests.memory === 0) return 0;
    const cpu = fraction(node.requested.milliCpu + pod.requests.milliCpu, node.allocatable.milliCpu);
    const mem = fraction(node.requested.memory + pod.requests.memory, node.allocatable.memory);
    return Math.floor((1 - Math.abs(cpu - mem) / 2) * MAX_NODE_SCORE);
  },
} satisfies ScorePlugin;

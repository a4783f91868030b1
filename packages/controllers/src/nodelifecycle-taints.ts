// The pure rules of the node lifecycle controller: which conditions and taints an unreachable
// node carries, and how long each of its pods may stay (Kubernetes' nodelifecycle controller
// and its taint-eviction manager, pkg/controller/tainteviction).
import { timestamp, type Node, type NodeCondition, type Pod, type Taint, type Toleration } from '@flotilla/api';

/** The taint key Kubernetes puts on a node whose kubelet stopped posting status. */
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';

/** Conditions the kubelet owns; all turn Unknown when it goes silent (nodelifecycle's nodeConditionsToUpdate). */
const KUBELET_CONDITIONS: readonly NodeCondition['type'][] = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

/**
 * The node's conditions once it is unreachable, or undefined when they already say so. As
 * Kubernetes: an existing condition keeps its lastHeartbeatTime and gets reason
 * NodeStatusUnknown; a Ready condition the kubelet never posted is added with
 * NodeStatusNeverUpdated.
 */
export function unknownConditions(node: Node, now: number): NodeCondition[] | undefined {
  const conditions = structuredClone(node.status?.conditions ?? []);
  let changed = false;
  for (const c of conditions) {
    if (!KUBELET_CONDITIONS.includes(c.type) || c.status === 'Unknown') continue;
    c.status = 'Unknown';
    c.reason = 'NodeStatusUnknown';
    c.message = 'Kubelet stopped posting node status.';
    c.lastTransitionTime = timestamp(now);
    changed = true;
  }
  if (!conditions.some((c) => c.type === 'Ready')) {
    conditions.push({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastTransitionTime: timestamp(now) });
    changed = true;
  }
  return changed ? conditions : undefined;
}

/** The node's taints with both unreachable taints present, or undefined when they already are. */
export function withUnreachableTaints(node: Node, now: number): Taint[] | undefined {
  const taints = [...(node.spec?.taints ?? [])];
  let changed = false;
  for (const effect of ['NoSchedule', 'NoExecute'] as const) {
    if (taints.some((t) => t.key === TAINT_UNREACHABLE && t.effect === effect)) continue;
    taints.push({ key: TAINT_UNREACHABLE, effect, timeAdded: timestamp(now) });
    changed = true;
  }
  return changed ? taints : undefined;
}

/** The node's taints without the unreachable ones, or undefined when it has none. */
export function withoutUnreachableTaints(node: Node): Taint[] | undefined {
  const taints = node.spec?.taints ?? [];
  const kept = taints.filter((t) => t.key !== TAINT_UNREACHABLE);
  return kept.length === taints.length ? undefined : kept;
}

export function hasUnreachableNoExecute(node: Node): boolean {
  return (node.spec?.taints ?? []).some((t) => t.key === TAINT_UNREACHABLE && t.effect === 'NoExecute');
}

/** Whether `toleration` tolerates `taint` (v1 Toleration.ToleratesTaint). */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect !== undefined && toleration.effect !== taint.effect) return false;
  if (toleration.key === undefined || toleration.key === '') return toleration.operator === 'Exists';
  if (toleration.key !== taint.key) return false;
  if (toleration.operator === 'Exists') return true;
  return (toleration.value ?? '') === (taint.value ?? '');
}

/**
 * How long a pod may stay on an unreachable node once it is tainted: the smallest
 * tolerationSeconds of its tolerations of the NoExecute taint (Infinity when they tolerate it
 * for ever), or `defaultMs` when none match. Kubernetes' DefaultTolerationSeconds admission
 * adds a 300 s toleration to every pod; `defaultMs` plays that role here.
 */
export function tolerationMs(pod: Pod, defaultMs: number): number {
  const taint: Taint = { key: TAINT_UNREACHABLE, effect: 'NoExecute' };
  const matching = (pod.spec.tolerations ?? []).filter((t) => tolerates(t, taint));
  if (matching.length === 0) return defaultMs;
  let min = Infinity;
  for (const t of matching) {
    if (t.tolerationSeconds === undefined) continue;
    min = Math.min(min, Math.max(0, t.tolerationSeconds) * 1000);
  }
  return min;
}

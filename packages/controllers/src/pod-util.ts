// Pod predicates the workload controllers share, as Kubernetes' pkg/api/v1/pod/util.go and
// pkg/controller/controller_utils.go: active, ready, available, and the order in which a
// ReplicaSet gives up pods when it scales down.
import type { Pod } from '@flotilla/api';

/** Not finished and not being deleted: what counts towards a ReplicaSet's replicas (FilterActivePods). */
export function isPodActive(pod: Pod): boolean {
  return !isPodFinished(pod) && pod.metadata.deletionTimestamp === undefined;
}

/** Succeeded or Failed: the pod will never run again (restartPolicy has given up on it). */
export function isPodFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/** When the pod last became Ready (ms since the epoch), if it is ready and says so. */
export function podReadySince(pod: Pod): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'Ready' && x.status === 'True');
  if (c?.lastTransitionTime === undefined) return undefined;
  const t = Date.parse(c.lastTransitionTime);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * IsPodAvailable: ready for at least minReadySeconds. With minReadySeconds 0, ready is enough;
 * otherwise a Ready condition without a transition time cannot prove it and does not count.
 */
export function isPodAvailable(pod: Pod, minReadySeconds: number, now: number): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const since = podReadySince(pod);
  return since !== undefined && since + minReadySeconds * 1000 <= now;
}

function phaseRank(pod: Pod): number {
  // PodPending < PodUnknown < PodRunning: the less a pod has achieved, the cheaper to lose.
  switch (pod.status?.phase) {
    case 'Pending':
    case undefined:
      return 0;
    case 'Unknown':
      return 1;
    case 'Running':
      return 2;
    default:
      return 0;
  }
}

function restarts(pod: Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((n, c) => Math.max(n, c.restartCount), 0);
}

function created(pod: Pod): number {
  const t = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/**
 * Orders pods so that the first ones are the cheapest to delete, as Kubernetes'
 * ActivePodsWithRanks.Less: unassigned before assigned; Pending before Unknown before
 * Running; not ready before ready; more pods of the same owner on the node first (spreads
 * what remains); ready for less time first; more restarts first; newer before older.
 */
export function sortPodsForDeletion(pods: readonly Pod[]): Pod[] {
  const perNode = new Map<string, number>();
  for (const p of pods) {
    const n = p.spec.nodeName;
    if (n !== undefined && n !== '') perNode.set(n, (perNode.get(n) ?? 0) + 1);
  }
  const rank = (p: Pod): number => (p.spec.nodeName === undefined || p.spec.nodeName === '' ? 0 : (perNode.get(p.spec.nodeName) ?? 0));
  const assigned = (p: Pod): number => (p.spec.nodeName === undefined || p.spec.nodeName === '' ? 0 : 1);
  return [...pods].sort((a, b) => {
    if (assigned(a) !== assigned(b)) return assigned(a) - assigned(b);
    if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
    const ra = isPodReady(a) ? 1 : 0;
    const rb = isPodReady(b) ? 1 : 0;
    if (ra !== rb) return ra - rb;
    if (rank(a) !== rank(b)) return rank(b) - rank(a);
    if (ra === 1 && rb === 1) {
      const ta = podReadySince(a) ?? Number.POSITIVE_INFINITY;
      const tb = podReadySince(b) ?? Number.POSITIVE_INFINITY;
      if (ta !== tb) return tb - ta;
    }
    if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
    return created(b) - created(a);
  });
}

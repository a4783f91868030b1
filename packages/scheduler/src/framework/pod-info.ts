// A pod as the scheduler reads it: the API object plus what every filter and score needs,
// computed once per pod (parsed requests, controller owner) rather than once per node.
import { parseQuantity, type Pod } from '@flotilla/api';

/** CPU in millicores and memory in bytes, as integers so that sums never drift. */
export interface Resources {
  readonly milliCpu: number;
  readonly memory: number;
}

export interface PodInfo {
  readonly pod: Pod;
  /** namespace/name: the informer's and the queue's key. */
  readonly key: string;
  readonly uid: string;
  /** The sum of the containers' requests (a container without requests adds 0). */
  readonly requests: Resources;
  /**
   * The same, with kube-scheduler's defaults for containers that request nothing (100m CPU,
   * 200Mi memory: schedutil.GetNonzeroRequests), so that scores still spread best-effort pods.
   */
  readonly nonZeroRequests: Resources;
  /** The uid of the controller ownerReference, if any: pods sharing it are spread. */
  readonly ownerUid: string | undefined;
}

export const DEFAULT_MILLI_CPU_REQUEST = 100;
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

/** Millicores, rounded up as Kubernetes' Quantity.MilliValue() does. */
export function milliCpu(q: string): number {
  return Math.ceil(Math.round(parseQuantity(q) * 1e6) / 1e3);
}

/** Bytes, rounded up as Kubernetes' Quantity.Value() does. */
export function bytes(q: string): number {
  return Math.ceil(parseQuantity(q));
}

export function podKey(pod: Pod): string {
  return `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`;
}

export function newPodInfo(pod: Pod): PodInfo {
  let cpu = 0;
  let mem = 0;
  let nzCpu = 0;
  let nzMem = 0;
  for (const c of pod.spec.containers) {
    const r = c.resources?.requests;
    const cCpu = r?.['cpu'] === undefined ? undefined : milliCpu(r['cpu']);
    const cMem = r?.['memory'] === undefined ? undefined : bytes(r['memory']);
    cpu += cCpu ?? 0;
    mem += cMem ?? 0;
    nzCpu += cCpu ?? DEFAULT_MILLI_CPU_REQUEST;
    nzMem += cMem ?? DEFAULT_MEMORY_REQUEST;
  }
  return {
    pod,
    key: podKey(pod),
    uid: pod.metadata.uid ?? '',
    requests: { milliCpu: cpu, memory: mem },
    nonZeroRequests: { milliCpu: nzCpu, memory: nzMem },
    ownerUid: pod.metadata.ownerReferences?.find((o) => o.controller === true)?.uid,
  };
}

// The result of a plugin, as the Kubernetes scheduler framework's *Status: a code and the
// reasons a person reads, instead of exceptions. A filter that rejects a node says why in
// kube-scheduler's own words ("Insufficient cpu"), so the pod's PodScheduled message can
// count nodes per reason exactly as kube-scheduler does.

export type Code = 'Success' | 'Unschedulable' | 'UnschedulableAndUnresolvable' | 'Error';

export interface Status {
  readonly code: Code;
  readonly reasons: readonly string[];
}

/** Shared: filters return it for every feasible node, so the hot path allocates nothing. */
export const SUCCESS: Status = Object.freeze({ code: 'Success', reasons: Object.freeze([]) as readonly string[] });

/** The node does not fit now, but could after other pods leave it (e.g. resources). */
export function unschedulable(...reasons: string[]): Status {
  return { code: 'Unschedulable', reasons };
}

/** The node does not fit, and removing pods from it would not help (labels, taints, state). */
export function unresolvable(...reasons: string[]): Status {
  return { code: 'UnschedulableAndUnresolvable', reasons };
}

/** Something went wrong that is not about the pod or the node (the attempt is retried). */
export function errorStatus(reason: string): Status {
  return { code: 'Error', reasons: [reason] };
}

export function isSuccess(s: Status): boolean {
  return s.code === 'Success';
}

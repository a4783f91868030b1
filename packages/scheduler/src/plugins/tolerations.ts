// Taint/toleration matching, shared by the plugins that read taints (Kubernetes'
// Toleration.ToleratesTaint in k8s.io/api/core/v1/toleration.go).
import type { Taint, Toleration } from '@flotilla/api';

/** An empty key with Exists tolerates every taint; an empty effect matches every effect. */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  return (t.value ?? '') === (taint.value ?? '');
}

export function tolerated(tolerations: readonly Toleration[] | undefined, taint: Taint): boolean {
  return tolerations !== undefined && tolerations.some((t) => toleratesTaint(t, taint));
}

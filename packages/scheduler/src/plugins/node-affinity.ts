// NodeAffinity: spec.nodeSelector (every label must match) and the required node affinity
// (nodeSelectorTerms are ORed, the expressions of one term ANDed; a term without expressions
// matches nothing), with Kubernetes' operators In, NotIn, Exists, DoesNotExist, Gt, Lt.
import { ownValue, type NodeSelectorRequirement, type NodeSelectorTerm } from '@flotilla/api';
import { SUCCESS, unresolvable } from '../framework/status.ts';
import type { FilterPlugin } from '../framework/types.ts';

export const NAME = 'NodeAffinity';
export const ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector";

type Labels = Readonly<Record<string, string>>;

const INTEGER = /^[+-]?\d+$/;

export function matchesRequirement(r: NodeSelectorRequirement, labels: Labels): boolean {
  // Own labels only: "constructor" or "toString" is on every object's prototype, not a label.
  const value = ownValue(labels, r.key);
  switch (r.operator) {
    case 'In':
      return value !== undefined && (r.values ?? []).includes(value);
    case 'NotIn':
      return value === undefined || !(r.values ?? []).includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      // Both sides must be integers (Kubernetes parses them with strconv.ParseInt).
      const bound = r.values?.[0];
      if (value === undefined || bound === undefined || !INTEGER.test(value) || !INTEGER.test(bound)) return false;
      return r.operator === 'Gt' ? Number(value) > Number(bound) : Number(value) < Number(bound);
    }
    default:
      return false;
  }
}

export function matchesTerm(term: NodeSelectorTerm, labels: Labels): boolean {
  const exprs = term.matchExpressions ?? [];
  return exprs.length > 0 && exprs.every((r) => matchesRequirement(r, labels));
}

export function matchesNodeSelectorAndAffinity(spec: { nodeSelector?: Record<string, string>; affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] } } } }, labels: Labels): boolean {
  if (spec.nodeSelector !== undefined) {
    for (const [k, v] of Object.entries(spec.nodeSelector)) if (ownValue(labels, k) !== v) return false;
  }
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return required === undefined || required.nodeSelectorTerms.some((t) => matchesTerm(t, labels));
}

export const nodeAffinity = {
  name: NAME,
  filter(pod, node) {
    return matchesNodeSelectorAndAffinity(pod.pod.spec, node.labels) ? SUCCESS : unresolvable(ERR_REASON_POD);
  },
} satisfies FilterPlugin;

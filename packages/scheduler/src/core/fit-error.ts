// Why a pod fits nowhere, in kube-scheduler's words (framework.FitError.Error()):
// "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient memory."
// Each node counts once per reason its first failing filter gave; the "N reason" strings are
// sorted as strings, exactly as kube-scheduler's sortReasonsHistogram does.

export const NO_NODES_AVAILABLE = 'no nodes available to schedule pods';

export function fitErrorMessage(numAllNodes: number, reasons: ReadonlyMap<string, number>): string {
  if (numAllNodes === 0) return NO_NODES_AVAILABLE;
  const histogram = [...reasons].map(([reason, count]) => `${count} ${reason}`).sort();
  return `0/${numAllNodes} nodes are available${histogram.length === 0 ? ':' : `: ${histogram.join(', ')}.`}`;
}

// One scheduling decision (kube-scheduler's schedulePod): filter nodes until enough feasible
// ones are found, score those, pick the best (ties broken at random). Synchronous and
// side-effect free apart from the rotating start index, so decisions are made one pod at a
// time against the cache as it stands.
import type { Framework } from '../framework/framework.ts';
import type { NodeInfo } from '../framework/node-info.ts';
import type { PodInfo } from '../framework/pod-info.ts';
import { fitErrorMessage } from './fit-error.ts';

const MIN_FEASIBLE_NODES_TO_FIND = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5;

/**
 * kube-scheduler's numFeasibleNodesToFind: with percentageOfNodesToScore unset (0), an
 * adaptive max(5, 50 - nodes/125) percent of the nodes, but at least 100.
 */
export function numFeasibleNodesToFind(numAllNodes: number, percentageOfNodesToScore = 0): number {
  if (numAllNodes < MIN_FEASIBLE_NODES_TO_FIND || percentageOfNodesToScore >= 100) return numAllNodes;
  let percentage = percentageOfNodesToScore;
  if (percentage <= 0) percentage = Math.max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND, 50 - Math.floor(numAllNodes / 125));
  return Math.max(MIN_FEASIBLE_NODES_TO_FIND, Math.floor((numAllNodes * percentage) / 100));
}

export type ScheduleResult =
  | { readonly kind: 'Scheduled'; readonly node: NodeInfo; readonly evaluatedNodes: number; readonly feasibleNodes: number }
  | { readonly kind: 'Unschedulable'; readonly message: string; readonly reasons: ReadonlyMap<string, number> }
  | { readonly kind: 'Error'; readonly message: string };

export interface ScheduleState {
  /** Where the next pod's filtering starts, so successive pods look at different nodes first. */
  nextStartNodeIndex: number;
  readonly percentageOfNodesToScore: number;
  readonly random: () => number;
}

export function schedulePod(fw: Framework, pod: PodInfo, nodes: readonly NodeInfo[], state: ScheduleState): ScheduleResult {
  const n = nodes.length;
  if (n === 0) return { kind: 'Unschedulable', message: fitErrorMessage(0, new Map()), reasons: new Map() };
  const want = numFeasibleNodesToFind(n, state.percentageOfNodesToScore);
  const feasible: NodeInfo[] = [];
  const reasons = new Map<string, number>();
  const start = state.nextStartNodeIndex % n;
  let processed = 0;
  while (processed < n && feasible.length < want) {
    const node = nodes[(start + processed) % n]!;
    processed++;
    const s = fw.runFilters(pod, node);
    if (s.code === 'Success') feasible.push(node);
    else if (s.code === 'Error') return { kind: 'Error', message: `running filters on node ${node.name}: ${s.reasons.join(', ')}` };
    else for (const r of s.reasons) reasons.set(r, (reasons.get(r) ?? 0) + 1);
  }
  state.nextStartNodeIndex = (start + processed) % n;
  if (feasible.length === 0) return { kind: 'Unschedulable', message: fitErrorMessage(n, reasons), reasons };
  const chosen = feasible.length === 1 ? feasible[0]! : selectHost(feasible, fw.runScores(pod, feasible), state.random);
  return { kind: 'Scheduled', node: chosen, evaluatedNodes: processed, feasibleNodes: feasible.length };
}

/** The highest total; among equals each is equally likely (reservoir sampling, as kube-scheduler). */
export function selectHost(nodes: readonly NodeInfo[], totals: Float64Array, random: () => number): NodeInfo {
  let best = 0;
  let ties = 1;
  for (let i = 1; i < nodes.length; i++) {
    const t = totals[i]!;
    if (t > totals[best]!) {
      best = i;
      ties = 1;
    } else if (t === totals[best]!) {
      ties++;
      if (random() * ties < 1) best = i;
    }
  }
  return nodes[best]!;
}

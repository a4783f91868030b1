// The in-tree plugins by name, and the default profile: filters in kube-scheduler's order
// (cheap, unresolvable checks first, so a node's reason is the most telling one), scores with
// its default weights (TaintToleration 3, spreading 2, resource scores 1).
import { newDefaultBinder, NAME as DEFAULT_BINDER } from '../plugins/default-binder.ts';
import { balancedAllocation } from '../plugins/balanced-allocation.ts';
import { leastAllocated } from '../plugins/least-allocated.ts';
import { nodeAffinity } from '../plugins/node-affinity.ts';
import { nodeReady } from '../plugins/node-ready.ts';
import { nodeResourcesFit } from '../plugins/node-resources-fit.ts';
import { nodeUnschedulable } from '../plugins/node-unschedulable.ts';
import { ownerSpread } from '../plugins/owner-spread.ts';
import { taintToleration } from '../plugins/taint-toleration.ts';
import type { Profile, Registry } from './types.ts';

export const inTreeRegistry: Registry = {
  [nodeUnschedulable.name]: () => nodeUnschedulable,
  [nodeReady.name]: () => nodeReady,
  [taintToleration.name]: () => taintToleration,
  [nodeAffinity.name]: () => nodeAffinity,
  [nodeResourcesFit.name]: () => nodeResourcesFit,
  [leastAllocated.name]: () => leastAllocated,
  [balancedAllocation.name]: () => balancedAllocation,
  [ownerSpread.name]: () => ownerSpread,
  [DEFAULT_BINDER]: newDefaultBinder,
};

export const defaultProfile: Profile = {
  filter: [nodeUnschedulable.name, nodeReady.name, taintToleration.name, nodeAffinity.name, nodeResourcesFit.name],
  score: [
    { name: taintToleration.name, weight: 3 },
    { name: ownerSpread.name, weight: 2 },
    { name: leastAllocated.name, weight: 1 },
    { name: balancedAllocation.name, weight: 1 },
  ],
  bind: DEFAULT_BINDER,
};

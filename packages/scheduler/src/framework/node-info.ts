// What the scheduler knows about one node: the Node object, its allocatable resources parsed
// once, and running sums over the pods on it (bound or assumed), kept up to date as pods come
// and go — kube-scheduler's NodeInfo. Filters and scores read the sums; nothing is
// recomputed per scheduling decision.
import type { Node, Taint } from '@flotilla/api';
import { bytes, milliCpu, type PodInfo } from './pod-info.ts';

interface MutableResources {
  milliCpu: number;
  memory: number;
}

export class NodeInfo {
  /** undefined while pods name a node the informer has not shown (or has deleted). */
  node: Node | undefined;
  readonly name: string;
  /** From status.allocatable; a resource that is not listed is 0 (as in Kubernetes). */
  allocatable: { milliCpu: number; memory: number; pods: number } = { milliCpu: 0, memory: 0, pods: Infinity };
  labels: Readonly<Record<string, string>> = {};
  taints: readonly Taint[] = [];
  unschedulable = false;
  ready = false;
  readonly requested: MutableResources = { milliCpu: 0, memory: 0 };
  readonly nonZeroRequested: MutableResources = { milliCpu: 0, memory: 0 };
  readonly pods = new Map<string, PodInfo>();
  /** Pods per controller owner uid: what the spreading score reads. */
  readonly ownerCounts = new Map<string, number>();

  constructor(name: string, node?: Node) {
    this.name = name;
    if (node !== undefined) this.setNode(node);
  }

  setNode(node: Node): void {
    this.node = node;
    const a = node.status?.allocatable ?? {};
    this.allocatable = {
      milliCpu: a['cpu'] === undefined ? 0 : milliCpu(a['cpu']),
      memory: a['memory'] === undefined ? 0 : bytes(a['memory']),
      pods: a['pods'] === undefined ? Infinity : Math.floor(Number(a['pods'])),
    };
    this.labels = node.metadata.labels ?? {};
    this.taints = node.spec?.taints ?? [];
    this.unschedulable = node.spec?.unschedulable === true;
    this.ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  }

  addPod(p: PodInfo): void {
    if (this.pods.has(p.uid)) return;
    this.pods.set(p.uid, p);
    this.apply(p, 1);
  }

  removePod(p: PodInfo): void {
    const had = this.pods.get(p.uid);
    if (had === undefined) return;
    this.pods.delete(p.uid);
    this.apply(had, -1);
  }

  private apply(p: PodInfo, sign: 1 | -1): void {
    this.requested.milliCpu += sign * p.requests.milliCpu;
    this.requested.memory += sign * p.requests.memory;
    this.nonZeroRequested.milliCpu += sign * p.nonZeroRequests.milliCpu;
    this.nonZeroRequested.memory += sign * p.nonZeroRequests.memory;
    if (p.ownerUid !== undefined) {
      const n = (this.ownerCounts.get(p.ownerUid) ?? 0) + sign;
      if (n === 0) this.ownerCounts.delete(p.ownerUid);
      else this.ownerCounts.set(p.ownerUid, n);
    }
  }
}

/**
 * What makes a node differently schedulable (the fields the filters read). Two Node objects
 * with the same signature give the same answers, so a heartbeat that only moves
 * lastHeartbeatTime does not wake every unschedulable pod (kube-scheduler compares the same
 * fields in its node-update event hints).
 */
export function schedulingSignature(node: Node): string {
  return JSON.stringify([
    node.metadata.labels ?? {},
    node.spec?.taints ?? [],
    node.spec?.unschedulable === true,
    node.status?.allocatable ?? {},
    node.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? '',
  ]);
}

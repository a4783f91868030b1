// The scheduler's view of the cluster (kube-scheduler's internal/cache): a NodeInfo per node
// with the pods on it, fed by the informers, plus "assumed" pods — placed by a decision of
// ours whose bind has not yet been seen in the informer. Assumed pods count against their
// node like bound ones, so a node is never promised twice while binds are in flight.
import type { Node, Pod } from '@flotilla/api';
import { NodeInfo } from './framework/node-info.ts';
import { newPodInfo, type PodInfo } from './framework/pod-info.ts';

interface PodState {
  info: PodInfo;
  nodeName: string;
  /** Placed by us and not yet seen bound by the informer. */
  assumed: boolean;
}

export class SchedulerCache {
  private readonly nodes = new Map<string, NodeInfo>();
  /** By pod uid: a pod deleted and created again under its name is another pod. */
  private readonly pods = new Map<string, PodState>();
  private nodeList: NodeInfo[] | undefined;

  /** The nodes the informer knows, in a stable order (rebuilt only when nodes come or go). */
  schedulableNodes(): readonly NodeInfo[] {
    this.nodeList ??= [...this.nodes.values()].filter((n) => n.node !== undefined);
    return this.nodeList;
  }

  nodeInfo(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  addOrUpdateNode(node: Node): void {
    const name = node.metadata.name ?? '';
    const ni = this.nodes.get(name);
    if (ni === undefined) this.nodes.set(name, new NodeInfo(name, node));
    else {
      if (ni.node === undefined) this.nodeList = undefined;
      ni.setNode(node);
      return;
    }
    this.nodeList = undefined;
  }

  removeNode(name: string): void {
    const ni = this.nodes.get(name);
    if (ni === undefined) return;
    // Pods still bound to a deleted node keep their NodeInfo until they go (as kube-scheduler).
    if (ni.pods.size === 0) this.nodes.delete(name);
    else ni.node = undefined;
    this.nodeList = undefined;
  }

  isAssumed(uid: string): boolean {
    return this.pods.get(uid)?.assumed === true;
  }

  /** Counts the pod on `nodeName` before its bind is confirmed. */
  assume(info: PodInfo, nodeName: string): void {
    this.place(info, nodeName, true);
  }

  /** The bind failed: release what the assumption held (no-op once the informer confirmed it). */
  forget(uid: string): void {
    const st = this.pods.get(uid);
    if (st === undefined || !st.assumed) return;
    this.unplace(uid, st);
  }

  /** A pod the informer shows bound to a node: confirms an assumption or moves it. */
  addOrUpdateBoundPod(pod: Pod): void {
    const uid = pod.metadata.uid ?? '';
    const nodeName = pod.spec.nodeName ?? '';
    const st = this.pods.get(uid);
    if (st !== undefined && st.nodeName === nodeName && st.info.ownerUid === pod.metadata.ownerReferences?.find((o) => o.controller === true)?.uid) {
      st.assumed = false;
      return;
    }
    this.place(newPodInfo(pod), nodeName, false);
  }

  /** The pod is gone or finished: whatever it held is free. */
  removePod(uid: string): void {
    const st = this.pods.get(uid);
    if (st !== undefined) this.unplace(uid, st);
  }

  private place(info: PodInfo, nodeName: string, assumed: boolean): void {
    const old = this.pods.get(info.uid);
    if (old !== undefined) this.unplace(info.uid, old);
    let ni = this.nodes.get(nodeName);
    if (ni === undefined) {
      ni = new NodeInfo(nodeName);
      this.nodes.set(nodeName, ni);
    }
    ni.addPod(info);
    this.pods.set(info.uid, { info, nodeName, assumed });
  }

  private unplace(uid: string, st: PodState): void {
    this.pods.delete(uid);
    const ni = this.nodes.get(st.nodeName);
    if (ni === undefined) return;
    ni.removePod(st.info);
    if (ni.node === undefined && ni.pods.size === 0) this.nodes.delete(st.nodeName);
  }
}

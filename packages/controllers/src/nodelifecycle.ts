// Node lifecycle, as Kubernetes' pkg/controller/nodelifecycle: every agent renews a Lease
// named after its node in kube-node-lease; a node whose Lease this controller has not seen
// renewed for a grace period gets Ready=Unknown and the unreachable taints, and after a
// further toleration period its pods are deleted so their ReplicaSets replace them elsewhere.
// A renewed Lease lifts the taints again.
//
// Silence is measured on this controller's own clock, from when it last OBSERVED a change of
// renewTime (Kubernetes' probeTimestamp), never by comparing renewTime with the local clock:
// the agents' clocks may be skewed. A controller that just started (a new leader) has observed
// nothing yet, so it gives every node a full grace period from its start, as Kubernetes does.
import { ApiError, WorkQueue, type Informer, type Lease, type Node, type Pod, type Taint } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';
import { hasUnreachableNoExecute, tolerationMs, unknownConditions, withoutUnreachableTaints, withUnreachableTaints } from './nodelifecycle-taints.ts';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';

export interface NodeLifecycleOptions {
  /** How long a Lease may go unrenewed before the node is marked unreachable (default 5000). */
  readonly gracePeriodMs?: number;
  /** How long pods stay on an unreachable node unless a toleration says otherwise (default 5000). */
  readonly evictionMs?: number;
  /** How often every node is checked (default 500); Kubernetes' node-monitor-period. */
  readonly monitorPeriodMs?: number;
}

/** What this controller has observed of one node (Kubernetes' nodeHealthData). */
interface NodeHealth {
  /** The Lease's renewTime when last observed (undefined: no Lease seen). */
  renewTime: string | undefined;
  /** ctx.now() when renewTime last changed, or when the node was first seen / we started. */
  probeTimestamp: number;
  /** Whether a renewal was observed by this controller: only then are taints lifted. */
  renewed: boolean;
  /** ctx.now() when we first saw the node unreachable and carrying its NoExecute taint. */
  unreachableSince: number | undefined;
}

export class NodeLifecycleController implements Controller {
  readonly name = 'nodelifecycle';
  private readonly nodes: Informer<Node>;
  private readonly leases: Informer<Lease>;
  private readonly pods: Informer<Pod>;
  private readonly queue: WorkQueue;
  private readonly health = new Map<string, NodeHealth>();
  private readonly gracePeriodMs: number;
  private readonly evictionMs: number;
  private readonly monitorPeriodMs: number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    private readonly ctx: ControllerContext,
    options: NodeLifecycleOptions = {},
  ) {
    this.gracePeriodMs = options.gracePeriodMs ?? 5000;
    this.evictionMs = options.evictionMs ?? 5000;
    this.monitorPeriodMs = options.monitorPeriodMs ?? 500;
    this.queue = new WorkQueue((key) => this.reconcile(key), { name: this.name, logger: ctx.logger });
    this.nodes = ctx.informers.informer<Node>('nodes').on({
      add: (n) => this.nodeChanged(n),
      update: (_, n) => this.nodeChanged(n),
      delete: (n) => this.health.delete(n.metadata.name ?? ''),
    });
    this.leases = ctx.informers.informer<Lease>('leases').on({
      add: (l) => this.leaseChanged(l),
      update: (_, l) => this.leaseChanged(l),
    });
    this.pods = ctx.informers.informer<Pod>('pods');
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // Everything starts observed "now": a full grace period for every node (see the top).
    for (const node of this.nodes.list()) this.observe(node.metadata.name ?? '');
    this.timer = setInterval(() => this.enqueueAll(), this.monitorPeriodMs);
    this.enqueueAll();
  }

  /** Ends the loop for good: a master that leads again builds a new controller (fresh observations). */
  stop(): void {
    this.started = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.queue.stop();
    this.health.clear();
  }

  /** Checks every node now; resolves when the checks are done (for tests driving a fake clock). */
  async monitorNow(): Promise<void> {
    this.enqueueAll();
    await this.queue.idle();
  }

  private enqueueAll(): void {
    for (const node of this.nodes.list()) this.queue.add(node.metadata.name ?? '');
  }

  private nodeChanged(node: Node): void {
    if (!this.started) return;
    this.observe(node.metadata.name ?? '');
    this.queue.add(node.metadata.name ?? '');
  }

  private leaseChanged(lease: Lease): void {
    if (!this.started || lease.metadata.namespace !== NODE_LEASE_NAMESPACE) return;
    const name = lease.metadata.name ?? '';
    // Observe at once rather than at the next check: the probe time is the time WE saw it.
    if (this.nodes.get(undefined, name) !== undefined) this.observe(name);
    this.queue.add(name);
  }

  /** Records a change of the node's Lease renewTime, on this controller's clock. */
  private observe(name: string): NodeHealth {
    const renewTime = this.leases.get(NODE_LEASE_NAMESPACE, name)?.spec?.renewTime;
    let h = this.health.get(name);
    if (h === undefined) {
      h = { renewTime, probeTimestamp: this.ctx.now(), renewed: false, unreachableSince: undefined };
      this.health.set(name, h);
    } else if (renewTime !== undefined && renewTime !== h.renewTime) {
      h.renewTime = renewTime;
      h.probeTimestamp = this.ctx.now();
      h.renewed = true;
    }
    return h;
  }

  private async reconcile(name: string): Promise<void> {
    const node = this.nodes.get(undefined, name);
    if (node === undefined) {
      this.health.delete(name);
      return;
    }
    const h = this.observe(name);
    const now = this.ctx.now();
    if (now - h.probeTimestamp >= this.gracePeriodMs) {
      await this.markUnreachable(node, h, now);
    } else if (h.renewed) {
      // Renewed since we last looked: lift our taints. Ready is the agent's to set again.
      h.unreachableSince = undefined;
      const taints = withoutUnreachableTaints(node);
      if (taints !== undefined) await this.updateTaints(node, taints);
    }
    // Otherwise nothing observed yet since we started: leave the node as the last leader left it.
  }

  private async markUnreachable(cached: Node, h: NodeHealth, now: number): Promise<void> {
    let node = cached;
    const conditions = unknownConditions(node, now);
    if (conditions !== undefined) {
      const next = structuredClone(node);
      next.status = { ...next.status, conditions };
      node = await this.ctx.client.update('nodes', next, 'status');
      this.ctx.logger.info({ node: node.metadata.name }, 'node stopped renewing its lease: marked Ready=Unknown');
    }
    const taints = withUnreachableTaints(node, now);
    if (taints !== undefined) node = await this.updateTaints(node, taints);
    if (!hasUnreachableNoExecute(node)) return;
    // Our own clock, not the taint's timeAdded (another master's clock, second precision).
    h.unreachableSince ??= now;
    await this.evictPods(node.metadata.name ?? '', h.unreachableSince, now);
  }

  private async updateTaints(node: Node, taints: Taint[]): Promise<Node> {
    const next = structuredClone(node);
    next.spec = { ...next.spec, taints };
    if (taints.length === 0) delete next.spec.taints;
    return this.ctx.client.update('nodes', next);
  }

  /** Deletes the node's pods whose toleration of the unreachable NoExecute taint ran out (taint manager). */
  private async evictPods(nodeName: string, since: number, now: number): Promise<void> {
    for (const pod of this.pods.list()) {
      if (pod.spec.nodeName !== nodeName || pod.metadata.deletionTimestamp !== undefined) continue;
      if (now < since + tolerationMs(pod, this.evictionMs)) continue;
      try {
        // A normal deletion, as the taint manager's: the pod's ReplicaSet stops counting it at
        // once and replaces it; the kubelet finishes it if the node comes back.
        await this.ctx.client.delete('pods', pod.metadata.namespace, pod.metadata.name ?? '', { preconditions: { uid: pod.metadata.uid ?? '' } });
        this.ctx.logger.info({ node: nodeName, pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, 'evicted a pod from an unreachable node');
      } catch (err) {
        if (!(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict'))) throw err;
      }
    }
  }
}

// The ReplicaSet controller, as Kubernetes' pkg/controller/replicaset/replica_set.go: keeps
// spec.replicas active pods matching the selector. Informer handlers only enqueue ReplicaSet
// keys; a worker re-reads the cache, claims pods (adopt/release), creates or deletes the
// difference, and writes status. "Expectations" remember creates and deletes not yet seen in
// the pod informer, so a sync that runs before the watch catches up does not act twice.
import { WorkQueue, objectKey, type ApiClient, type Informer, type Pod, type ReplicaSet, type ReplicaSetStatus } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';
import { claimObjects, controllerRefOf, isNotFound, matchingOwners, newControllerRef, selectorFor } from './owner.ts';
import { isPodActive, isPodAvailable, isPodFinished, isPodReady, sortPodsForDeletion } from './pod-util.ts';

/** Kubernetes' BurstReplicas: the most pods one sync creates or deletes. */
export const BURST_REPLICAS = 500;
/** Kubernetes' ExpectationsTimeout: an expectation never observed is forgotten after this. */
export const EXPECTATIONS_TIMEOUT_MS = 5 * 60 * 1000;

interface Expectation {
  add: number;
  del: number;
  /** Keys of the pods whose deletion we wait to see (UIDTrackingControllerExpectations). */
  readonly deleting: Set<string>;
  readonly at: number;
}

/**
 * ControllerExpectations: per owner key, how many creations and deletions are still to be
 * observed. Satisfied when both reach zero, or when they are older than the timeout (a watch
 * event was lost, or a create failed silently: the next sync recounts and heals).
 */
export class Expectations {
  private readonly map = new Map<string, Expectation>();

  constructor(
    private readonly now: () => number,
    private readonly timeoutMs = EXPECTATIONS_TIMEOUT_MS,
  ) {}

  satisfied(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return true;
    if (e.add <= 0 && e.del <= 0) return true;
    return this.now() - e.at > this.timeoutMs;
  }

  expectCreations(key: string, n: number): void {
    this.map.set(key, { add: n, del: 0, deleting: new Set(), at: this.now() });
  }

  expectDeletions(key: string, podKeys: readonly string[]): void {
    this.map.set(key, { add: 0, del: podKeys.length, deleting: new Set(podKeys), at: this.now() });
  }

  creationObserved(key: string): void {
    const e = this.map.get(key);
    if (e !== undefined) e.add--;
  }

  /** A deletion of `podKey` was seen (or will never happen): counted once per pod. */
  deletionObserved(key: string, podKey: string): void {
    const e = this.map.get(key);
    if (e !== undefined && e.deleting.delete(podKey)) e.del--;
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}

export interface ReplicaSetControllerOptions {
  /** Workers (default 2). */
  readonly concurrency?: number;
  readonly expectationsTimeoutMs?: number;
}

export class ReplicaSetController implements Controller {
  readonly name = 'replicaset';
  private readonly client: ApiClient;
  private readonly now: () => number;
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;
  readonly expectations: Expectations;
  private started = false;
  private stopped = false;

  constructor(ctx: ControllerContext, options: ReplicaSetControllerOptions = {}) {
    this.client = ctx.client;
    this.now = ctx.now;
    this.expectations = new Expectations(ctx.now, options.expectationsTimeoutMs);
    this.queue = new WorkQueue((key) => this.sync(key), { concurrency: options.concurrency ?? 2, name: 'replicaset', logger: ctx.logger });
    this.rsInformer = ctx.informers.informer<ReplicaSet>('replicasets');
    this.podInformer = ctx.informers.informer<Pod>('pods');
    this.rsInformer.on({
      add: (rs) => this.enqueue(rs),
      update: (_, rs) => this.enqueue(rs),
      delete: (rs) => {
        this.expectations.delete(objectKey(rs));
        this.enqueue(rs);
      },
    });
    this.podInformer.on({ add: (p) => this.addPod(p), update: (o, p) => this.updatePod(o, p), delete: (p) => this.deletePod(p) });
  }

  start(): void {
    this.started = true;
    for (const rs of this.rsInformer.list()) this.enqueue(rs);
  }

  stop(): void {
    this.stopped = true;
    this.queue.stop();
  }

  /** Resolves when no sync is queued or running (tests; timers may still add later). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private enqueue(rs: ReplicaSet): void {
    if (this.started) this.queue.add(objectKey(rs));
  }

  /** The ReplicaSet that controls `pod`, if it is in the cache with the same uid. */
  private ownerOf(pod: Pod): ReplicaSet | undefined {
    const ref = controllerRefOf(pod);
    if (ref === undefined || ref.kind !== 'ReplicaSet') return undefined;
    const rs = this.rsInformer.get(pod.metadata.namespace, ref.name);
    return rs?.metadata.uid === ref.uid ? rs : undefined;
  }

  private enqueueMatching(pod: Pod): void {
    for (const rs of matchingOwners(this.rsInformer.listIn(pod.metadata.namespace), pod)) this.enqueue(rs);
  }

  private addPod(pod: Pod): void {
    // A pod that shows up already being deleted (e.g. after a relist) counts as a deletion.
    if (pod.metadata.deletionTimestamp !== undefined) return this.deletePod(pod);
    const rs = this.ownerOf(pod);
    if (rs !== undefined) {
      this.expectations.creationObserved(objectKey(rs));
      this.enqueue(rs);
      return;
    }
    if (controllerRefOf(pod) === undefined) this.enqueueMatching(pod);
  }

  private updatePod(old: Pod, pod: Pod): void {
    if (pod.metadata.deletionTimestamp !== undefined && old.metadata.deletionTimestamp === undefined) {
      // Graceful deletion: the pod stops counting now, not when it finally disappears.
      this.deletePod(pod);
    }
    const oldRef = controllerRefOf(old);
    const ref = controllerRefOf(pod);
    if (oldRef !== undefined && oldRef.uid !== ref?.uid) {
      const prev = this.ownerOf(old);
      if (prev !== undefined) this.enqueue(prev);
    }
    const rs = this.ownerOf(pod);
    if (rs !== undefined) {
      this.enqueue(rs);
      // Availability changes with time alone: look again when minReadySeconds has passed.
      const minReady = rs.spec.minReadySeconds ?? 0;
      if (minReady > 0 && !isPodReady(old) && isPodReady(pod)) this.queue.addAfter(objectKey(rs), minReady * 1000 + 100);
      return;
    }
    if (ref === undefined && (JSON.stringify(old.metadata.labels) !== JSON.stringify(pod.metadata.labels) || oldRef !== undefined)) this.enqueueMatching(pod);
  }

  private deletePod(pod: Pod): void {
    const rs = this.ownerOf(pod);
    if (rs === undefined) return;
    this.expectations.deletionObserved(objectKey(rs), objectKey(pod));
    this.enqueue(rs);
  }

  /** syncReplicaSet: one pass of compare-and-act for the ReplicaSet at `key`. */
  private async sync(key: string): Promise<void> {
    if (this.stopped) return;
    const rs = this.rsInformer.getByKey(key);
    if (rs === undefined) {
      this.expectations.delete(key);
      return;
    }
    const needsSync = this.expectations.satisfied(key);
    const selector = selectorFor(rs.spec.selector);
    const inNamespace = this.podInformer.listIn(rs.metadata.namespace);
    const claimed = await claimObjects({
      client: this.client,
      resource: 'pods',
      owner: rs,
      ownerResource: 'replicasets',
      selector,
      candidates: inNamespace.filter((p) => isPodActive(p) || isControlledByUid(p, rs.metadata.uid)),
    });
    // Finished pods never run again: delete them so the owner can replace them.
    const finished = claimed.filter((p) => isPodFinished(p) && p.metadata.deletionTimestamp === undefined);
    for (const p of finished) await this.deletePodQuietly(p);
    let active = claimed.filter(isPodActive);
    let err: unknown;
    if (needsSync && rs.metadata.deletionTimestamp === undefined) {
      try {
        active = await this.manageReplicas(key, active, rs);
      } catch (e) {
        err = e;
      }
    }
    const status = await this.updateStatus(rs, active);
    if (err !== undefined) throw err;
    const minReady = rs.spec.minReadySeconds ?? 0;
    if (minReady > 0 && status.readyReplicas === status.replicas && status.availableReplicas !== status.replicas) {
      this.queue.addAfter(key, minReady * 1000);
    }
  }

  private async deletePodQuietly(pod: Pod): Promise<void> {
    try {
      await this.client.delete('pods', pod.metadata.namespace, pod.metadata.name ?? '', { preconditions: { uid: pod.metadata.uid ?? '' } });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /**
   * manageReplicas: creates or deletes the difference between spec.replicas and the active
   * pods. Returns the pods that remain (without the ones it deleted) for the status.
   */
  private async manageReplicas(key: string, active: Pod[], rs: ReplicaSet): Promise<Pod[]> {
    const want = rs.spec.replicas ?? 1;
    const diff = active.length - want;
    if (diff < 0) {
      const n = Math.min(-diff, BURST_REPLICAS);
      this.expectations.expectCreations(key, n);
      const created = await this.slowStartBatch(n, () => this.createPod(rs));
      const skipped = n - created.done;
      // Creates never issued will never be observed: stop waiting for them.
      for (let i = 0; i < skipped; i++) this.expectations.creationObserved(key);
      if (created.error !== undefined) throw created.error;
      return active;
    }
    if (diff > 0) {
      const n = Math.min(diff, BURST_REPLICAS);
      const victims = sortPodsForDeletion(active).slice(0, n);
      this.expectations.expectDeletions(key, victims.map(objectKey));
      const results = await Promise.allSettled(
        victims.map(async (p) => {
          try {
            await this.client.delete('pods', p.metadata.namespace, p.metadata.name ?? '', { preconditions: { uid: p.metadata.uid ?? '' } });
          } catch (e) {
            // The delete will never be observed as ours: forget it; a pod already gone is fine.
            this.expectations.deletionObserved(key, objectKey(p));
            if (!isNotFound(e)) throw e;
          }
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      const gone = new Set(victims);
      return active.filter((p) => !gone.has(p));
    }
    return active;
  }

  /**
   * slowStartBatch: 1, 2, 4, … calls at once, stopping at the first batch with an error, so
   * a systematic failure (quota, a bad template) costs one call, not hundreds.
   */
  private async slowStartBatch(count: number, fn: () => Promise<void>): Promise<{ done: number; error?: unknown }> {
    let done = 0;
    for (let batch = Math.min(1, count); done < count && !this.stopped; batch = Math.min(2 * batch, count - done)) {
      const results = await Promise.allSettled(Array.from({ length: batch }, () => fn()));
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      done += ok;
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) return { done, error: failed.reason };
    }
    return { done };
  }

  private async createPod(rs: ReplicaSet): Promise<void> {
    const t = rs.spec.template;
    const meta = t.metadata ?? {};
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${rs.metadata.name ?? ''}-`,
        namespace: rs.metadata.namespace ?? 'default',
        labels: { ...meta.labels },
        ...(meta.annotations === undefined ? {} : { annotations: { ...meta.annotations } }),
        ...(meta.finalizers === undefined ? {} : { finalizers: [...meta.finalizers] }),
        ownerReferences: [newControllerRef(rs)],
      },
      spec: structuredClone(t.spec),
    };
    await this.client.create('pods', pod);
  }

  private calculateStatus(rs: ReplicaSet, active: readonly Pod[]): ReplicaSetStatus {
    const templateLabels = rs.spec.template.metadata?.labels ?? {};
    const now = this.now();
    const minReady = rs.spec.minReadySeconds ?? 0;
    return {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v)).length,
      readyReplicas: active.filter(isPodReady).length,
      availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
      observedGeneration: rs.metadata.generation ?? 1,
    };
  }

  /** Writes the status when it changed (a status write is a store write: do not churn). */
  private async updateStatus(rs: ReplicaSet, active: readonly Pod[]): Promise<ReplicaSetStatus> {
    const status = this.calculateStatus(rs, active);
    const cur = rs.status;
    if (
      cur !== undefined &&
      cur.replicas === status.replicas &&
      cur.fullyLabeledReplicas === status.fullyLabeledReplicas &&
      cur.readyReplicas === status.readyReplicas &&
      cur.availableReplicas === status.availableReplicas &&
      cur.observedGeneration === status.observedGeneration
    ) {
      return status;
    }
    if (this.stopped) return status;
    const next: ReplicaSet = { ...structuredClone(rs), status };
    try {
      await this.client.update('replicasets', next, 'status');
    } catch (e) {
      if (isNotFound(e)) return status;
      // A conflict means the RS changed under us: throwing re-queues the key with backoff.
      throw e;
    }
    return status;
  }
}

function isControlledByUid(pod: Pod, uid: string | undefined): boolean {
  return controllerRefOf(pod)?.uid === uid;
}

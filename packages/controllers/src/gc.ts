// The garbage collector, as Kubernetes' pkg/controller/garbagecollector (simplified to one
// queue over a list of resources):
// - Background: an object whose owners are all gone (by uid) is deleted.
// - Foreground: an owner being deleted with the `foregroundDeletion` finalizer waits until its
//   dependents with blockOwnerDeletion are gone (we delete them, in the foreground themselves
//   when they have dependents), then we remove the finalizer.
// - Orphan: an owner being deleted with the `orphan` finalizer loses its dependents' references
//   to it, then the finalizer.
// Other finalizers are left to whoever set them. "Owner gone" is always confirmed with a live
// GET (404, or another uid under that name) before anything is deleted, so a slow informer
// never causes a wrong deletion; the caches only decide when to look.
import { ApiError, resourceForKind, WorkQueue, type Informer, type KubeObject, type OwnerReference } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';
import { FINALIZER_FOREGROUND, FINALIZER_ORPHAN, hasFinalizer, isDeletingDependents, itemKey, OwnerIndex, parseItemKey, refTo, type ItemKey } from './gc-graph.ts';

/** The resources whose objects own or are owned in Flotilla. */
export const GC_RESOURCES: readonly string[] = ['pods', 'replicasets', 'deployments', 'services', 'endpoints'];

export interface GarbageCollectorOptions {
  /** The resources watched for owners and dependents (default GC_RESOURCES). */
  readonly resources?: readonly string[];
  /** Objects processed at once (default 4). */
  readonly concurrency?: number;
}

type OwnerState = 'solid' | 'dangling' | 'waiting';

export class GarbageCollector implements Controller {
  readonly name = 'garbagecollector';
  private readonly caches = new Map<string, Informer<KubeObject>>();
  private readonly index = new OwnerIndex();
  private readonly queue: WorkQueue;
  private started = false;

  constructor(
    private readonly ctx: ControllerContext,
    options: GarbageCollectorOptions = {},
  ) {
    this.queue = new WorkQueue((key) => this.process(key), { name: this.name, logger: ctx.logger, ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }) });
    for (const resource of options.resources ?? GC_RESOURCES) {
      const informer = ctx.informers.informer<KubeObject>(resource).on({
        add: (obj) => this.changed(resource, undefined, obj),
        update: (old, obj) => this.changed(resource, old, obj),
        delete: (obj) => this.deleted(resource, obj),
      });
      this.caches.set(resource, informer);
    }
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // Level-triggered: look at everything once, so whatever happened while no collector ran
    // (a deleted owner, a half-done foreground deletion) is finished now.
    for (const [resource, informer] of this.caches) for (const obj of informer.list()) this.queue.add(itemKey(resource, obj));
  }

  stop(): void {
    this.started = false;
    this.queue.stop();
  }

  private changed(resource: string, old: KubeObject | undefined, obj: KubeObject): void {
    const key = itemKey(resource, obj);
    this.index.set(key, obj);
    if (!this.started) return;
    this.queue.add(key);
    // Another uid under the same name (a relist after a missed delete): the old one is gone.
    if (old !== undefined && old.metadata.uid !== obj.metadata.uid) this.enqueueDependents(old);
  }

  private deleted(resource: string, obj: KubeObject): void {
    this.index.set(itemKey(resource, obj), undefined);
    if (!this.started) return;
    this.enqueueDependents(obj);
    // An owner waiting in the foreground for this dependent looks again.
    for (const ref of obj.metadata.ownerReferences ?? []) {
      const owner = this.ownerKey(ref, obj.metadata.namespace);
      if (owner !== undefined) this.queue.add(owner);
    }
  }

  private enqueueDependents(owner: KubeObject): void {
    for (const key of this.index.dependentsOf(owner.metadata.uid)) this.queue.add(key);
  }

  private ownerKey(ref: OwnerReference, namespace: string | undefined): ItemKey | undefined {
    const info = resourceForKind(ref.kind);
    if (info === undefined || !this.caches.has(info.resource)) return undefined;
    return `${info.resource}/${info.namespaced ? (namespace ?? '') : ''}/${ref.name}`;
  }

  private cached(key: ItemKey): KubeObject | undefined {
    const { resource, namespace, name } = parseItemKey(key);
    return this.caches.get(resource)?.get(namespace, name);
  }

  private async process(key: ItemKey): Promise<void> {
    const obj = this.cached(key);
    if (obj === undefined) return;
    const { resource } = parseItemKey(key);
    if (obj.metadata.deletionTimestamp !== undefined) await this.processDeleting(resource, obj);
    else await this.attemptToDelete(resource, obj);
  }

  /** An object being deleted: carry out the propagation its finalizers ask for. */
  private async processDeleting(resource: string, obj: KubeObject): Promise<void> {
    if (hasFinalizer(obj, FINALIZER_ORPHAN)) {
      await this.orphanDependents(obj);
      await this.removeFinalizer(resource, obj, FINALIZER_ORPHAN);
      return;
    }
    if (hasFinalizer(obj, FINALIZER_FOREGROUND)) {
      const uid = obj.metadata.uid;
      const dependents = this.dependentsOf(uid);
      const blocking = dependents.filter(([, d]) => refTo(d, uid)?.blockOwnerDeletion === true);
      if (blocking.length === 0) {
        await this.removeFinalizer(resource, obj, FINALIZER_FOREGROUND);
        return;
      }
      // Each dependent sees its owner waiting and is deleted; its deletion brings us back here.
      for (const [key, d] of dependents) if (d.metadata.deletionTimestamp === undefined) this.queue.add(key);
      return;
    }
    if ((obj.metadata.finalizers ?? []).length === 0) await this.completeDeletion(resource, obj);
  }

  private dependentsOf(uid: string | undefined): [ItemKey, KubeObject][] {
    const out: [ItemKey, KubeObject][] = [];
    for (const key of this.index.dependentsOf(uid)) {
      const obj = this.cached(key);
      if (obj !== undefined && refTo(obj, uid) !== undefined) out.push([key, obj]);
    }
    return out;
  }

  /** Removes every dependent's reference to `owner` (orphanDependents). */
  private async orphanDependents(owner: KubeObject): Promise<void> {
    for (const [key, dep] of this.dependentsOf(owner.metadata.uid)) {
      const next = structuredClone(dep);
      const refs = (next.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (refs.length > 0) next.metadata.ownerReferences = refs;
      else delete next.metadata.ownerReferences;
      await ignoreNotFound(this.ctx.client.update(parseItemKey(key).resource, next));
    }
  }

  private async removeFinalizer(resource: string, obj: KubeObject, finalizer: string): Promise<void> {
    const next = structuredClone(obj);
    const finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    if (finalizers.length > 0) next.metadata.finalizers = finalizers;
    else delete next.metadata.finalizers;
    const updated = await ignoreNotFound(this.ctx.client.update(resource, next));
    if (updated !== undefined && finalizers.length === 0) await this.completeDeletion(resource, updated);
  }

  /**
   * Finishes the deletion of an object that is marked deleted and held by nothing any more.
   * Flotilla's API server does not delete an object when an update removes its last finalizer
   * (Kubernetes does); asking for the deletion again does, since nothing holds it. A pod still
   * in its grace period is its kubelet's to finish.
   */
  private async completeDeletion(resource: string, obj: KubeObject): Promise<void> {
    if (resource === 'pods' && (obj.metadata.deletionGracePeriodSeconds ?? 0) > 0) return;
    await ignoreNotFound(this.ctx.client.delete(resource, obj.metadata.namespace, obj.metadata.name ?? '', { preconditions: { uid: obj.metadata.uid ?? '' } }));
  }

  /** attemptToDeleteItem: an object with owners is deleted when none of them holds it any more. */
  private async attemptToDelete(resource: string, obj: KubeObject): Promise<void> {
    const refs = obj.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;
    // The common case costs no request: every owner is cached, with the same uid, not waiting.
    if (refs.every((ref) => this.cachedSolid(ref, obj.metadata.namespace))) return;
    const namespace = obj.metadata.namespace;
    const name = obj.metadata.name ?? '';
    const latest = await ignoreNotFound(this.ctx.client.get<KubeObject>(resource, namespace, name));
    if (latest === undefined || latest.metadata.uid !== obj.metadata.uid || latest.metadata.deletionTimestamp !== undefined) return;
    const solid: OwnerReference[] = [];
    let dangling = 0;
    let waiting = 0;
    for (const ref of latest.metadata.ownerReferences ?? []) {
      const state = await this.classify(ref, namespace);
      if (state === 'solid') solid.push(ref);
      else if (state === 'dangling') dangling++;
      else waiting++;
    }
    if (solid.length > 0) {
      if (dangling + waiting === 0) return;
      // Still owned: drop only the references to owners that are gone or waiting on it, or a
      // foreground owner would wait for it for ever.
      const next = structuredClone(latest);
      next.metadata.ownerReferences = solid;
      await ignoreNotFound(this.ctx.client.update(resource, next));
      return;
    }
    if (dangling + waiting === 0) return;
    let policy: 'Foreground' | 'Background' | 'Orphan';
    if (waiting > 0) policy = this.index.dependentsOf(latest.metadata.uid).length > 0 ? 'Foreground' : 'Background';
    else policy = hasFinalizer(latest, FINALIZER_ORPHAN) ? 'Orphan' : hasFinalizer(latest, FINALIZER_FOREGROUND) ? 'Foreground' : 'Background';
    this.ctx.logger.info({ resource, object: `${namespace ?? ''}/${name}`, policy }, 'garbage collecting an object whose owners are gone or being deleted');
    await ignoreNotFound(this.ctx.client.delete(resource, namespace, name, { propagationPolicy: policy, preconditions: { uid: latest.metadata.uid ?? '' } }));
  }

  /** From the cache only: the owner is there, with this uid, and not waiting for its dependents. */
  private cachedSolid(ref: OwnerReference, namespace: string | undefined): boolean {
    const info = resourceForKind(ref.kind);
    if (info === undefined) return true;
    const owner = this.caches.get(info.resource)?.get(info.namespaced ? namespace : undefined, ref.name);
    return owner !== undefined && owner.metadata.uid === ref.uid && !isDeletingDependents(owner);
  }

  /** classifyReferences, with a live read: solid, dangling (404 or another uid) or waiting. */
  private async classify(ref: OwnerReference, namespace: string | undefined): Promise<OwnerState> {
    const info = resourceForKind(ref.kind);
    // A kind this API does not serve cannot be checked: never collect on its account.
    if (info === undefined) return 'solid';
    const owner = await ignoreNotFound(this.ctx.client.get<KubeObject>(info.resource, info.namespaced ? namespace : undefined, ref.name));
    if (owner === undefined || owner.metadata.uid !== ref.uid) return 'dangling';
    return isDeletingDependents(owner) ? 'waiting' : 'solid';
  }
}

async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
    throw err;
  }
}

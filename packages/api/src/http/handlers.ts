// The verbs on resources: get, list, create, update, patch, delete, deletecollection, and the
// status, scale and binding subresources. Each write is a store transaction guarded by the
// resourceVersion it was computed from, so concurrent writers get 409 instead of lost updates.
import { authorizePod, type User } from '../auth.ts';
import { ApiError, conflict, successStatus } from '../errors.ts';
import { formatSelector, fromLabelSelector, parseFieldSelector, parseLabelSelector, SelectorError } from '../labels.ts';
import type { ListOptions, ObjectStore } from '../objects.ts';
import { jsonPatch, mergePatch, PatchError, PatchLimitError, strategicMergePatch } from '../patch.ts';
import { RESOURCES, supportedFields, type ResourceInfo } from '../resources.ts';
import { checkBody, generatedName, NAMESPACE_FINALIZER, prepareCreate, prepareUpdate, timestamp } from '../strategy.ts';
import type { Deployment, Scale } from '../types/apps.ts';
import type { Binding, Namespace, Pod } from '../types/core.ts';
import type { KubeList, KubeObject, Status } from '../types/meta.ts';

export type PatchType = 'merge' | 'strategic' | 'json';

export interface DeleteOptions {
  readonly gracePeriodSeconds?: number;
  readonly propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  readonly orphanDependents?: boolean;
  readonly preconditions?: { uid?: string; resourceVersion?: string };
  readonly dryRun?: string[];
}

/** Namespaces that exist from the start and may not be deleted. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-node-lease'] as const;

const CONFLICT_RETRIES = 5;

export function listOptions(q: URLSearchParams, r: ResourceInfo): ListOptions {
  try {
    const limit = Number(q.get('limit') ?? 0);
    if (!Number.isSafeInteger(limit) || limit < 0) throw new ApiError('BadRequest', 'limit must be a non-negative integer');
    const match = q.get('resourceVersionMatch') ?? undefined;
    if (match !== undefined && match !== 'NotOlderThan' && match !== 'Exact') throw new ApiError('BadRequest', 'resourceVersionMatch must be NotOlderThan or Exact');
    const rv = q.get('resourceVersion') ?? undefined;
    if (rv !== undefined && rv !== '' && !/^\d+$/.test(rv)) throw new ApiError('BadRequest', `resourceVersion "${rv}" is not a valid resource version`);
    return {
      labels: parseLabelSelector(q.get('labelSelector') ?? ''),
      fields: parseFieldSelector(q.get('fieldSelector') ?? '', supportedFields(r)),
      limit,
      continueToken: q.get('continue') ?? undefined,
      resourceVersion: rv,
      resourceVersionMatch: match as ListOptions['resourceVersionMatch'],
    };
  } catch (err) {
    if (err instanceof SelectorError) throw new ApiError('BadRequest', `unable to parse requirement: ${err.message}`);
    throw err;
  }
}

export class Handlers {
  constructor(private readonly objects: ObjectStore) {}

  get(r: ResourceInfo, namespace: string | undefined, name: string, q: URLSearchParams): Promise<KubeObject> {
    // resourceVersion=0 asks for any version: this master's, without a round trip.
    return this.objects.get(r, namespace, name, q.get('resourceVersion') === '0');
  }

  list(r: ResourceInfo, namespace: string | undefined, q: URLSearchParams): Promise<KubeList> {
    return this.objects.list(r, namespace, listOptions(q, r));
  }

  async create(r: ResourceInfo, namespace: string | undefined, body: unknown, dryRun: boolean): Promise<KubeObject> {
    const obj = checkBody(r, body, namespace);
    if (r.namespaced) await this.checkNamespaceOpen(namespace!);
    const generate = (obj.metadata.name === undefined || obj.metadata.name === '') && obj.metadata.generateName !== undefined;
    for (let attempt = 0; ; attempt++) {
      if (generate) obj.metadata.name = generatedName(obj.metadata.generateName!);
      const prepared = prepareCreate(r, structuredClone(obj));
      if (dryRun) return prepared;
      try {
        return await this.objects.create(r, prepared);
      } catch (err) {
        if (!(generate && err instanceof ApiError && err.reason === 'AlreadyExists' && attempt < 3)) throw err;
      }
    }
  }

  private async checkNamespaceOpen(namespace: string): Promise<void> {
    const ns = RESOURCES.find((x) => x.kind === 'Namespace')!;
    let obj: KubeObject;
    try {
      // This master's copy first (no round trip); a namespace it has not seen yet may have
      // just been created through another master, so a miss is checked with a linearizable read.
      obj = await this.objects.get(ns, undefined, namespace, true).catch((err: unknown) => {
        if (err instanceof ApiError && err.reason === 'NotFound') return this.objects.get(ns, undefined, namespace);
        throw err;
      });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') throw new ApiError('NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
      throw err;
    }
    if (obj.metadata.deletionTimestamp !== undefined) {
      throw new ApiError('Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`, { name: namespace, kind: 'namespaces' });
    }
  }

  /** PUT: replace the object (or its status, or a namespace's finalizers), checked against the resourceVersion it carries. */
  async update(r: ResourceInfo, namespace: string | undefined, name: string, subresource: 'status' | 'finalize' | undefined, body: unknown, dryRun: boolean): Promise<KubeObject> {
    const next = checkBody(r, body, namespace, name);
    const wanted = next.metadata.resourceVersion;
    return this.guardedUpdate(r, namespace, name, wanted, dryRun, (current) => prepareUpdate(r, structuredClone(next), current, subresource));
  }

  /** PATCH: apply the patch to the current object and store it, retrying if it moved meanwhile. */
  async patch(r: ResourceInfo, namespace: string | undefined, name: string, subresource: 'status' | undefined, type: PatchType, patch: unknown, dryRun: boolean, user: User): Promise<KubeObject> {
    return this.guardedUpdate(r, namespace, name, undefined, dryRun, (current) => {
      if (r.kind === 'Pod') authorizePod(user, current as Pod);
      const patched = applyPatch(() => (type === 'json' ? jsonPatch(current, patch) : type === 'merge' ? mergePatch(current, patch) : strategicMergePatch(current, patch)));
      const next = checkBody(r, patched, namespace, name);
      const pinned = next.metadata.resourceVersion;
      if (pinned !== undefined && pinned !== current.metadata.resourceVersion) throw conflict(r.resource, name, r.group);
      return prepareUpdate(r, next, current, subresource);
    });
  }

  /**
   * Reads, computes the new object, and writes it if nothing changed in between. With a
   * pinned resourceVersion a mismatch is 409; without one the whole cycle is retried.
   */
  private async guardedUpdate(r: ResourceInfo, namespace: string | undefined, name: string, pinned: string | undefined, dryRun: boolean, compute: (current: KubeObject) => KubeObject): Promise<KubeObject> {
    // A dry run answers from what it read, so it reads the latest state.
    const read = new ReadThenConfirm(this.objects, r, namespace, name, dryRun);
    for (let attempt = 0; ; attempt++) {
      const current = await read.next();
      if (current === undefined) continue;
      if (pinned !== undefined && pinned !== '' && pinned !== current.metadata.resourceVersion) {
        if (read.mayRetry()) continue;
        throw conflict(r.resource, name, r.group);
      }
      let next: KubeObject;
      try {
        next = compute(current);
      } catch (err) {
        // A refusal (already bound, a uid precondition, …) must be decided on the latest state.
        if (err instanceof ApiError && read.mayRetry()) continue;
        throw err;
      }
      if (dryRun) return next;
      try {
        if (finishesDeletion(next)) {
          // The last finalizer of an object being deleted is gone: the update is its deletion
          // (Kubernetes' shouldDeleteDuringUpdate).
          const revision = await this.objects.delete(r, namespace, name, Number(current.metadata.resourceVersion));
          return { ...next, metadata: { ...next.metadata, resourceVersion: String(revision) } };
        }
        return await this.objects.update(r, next, Number(current.metadata.resourceVersion));
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict')) throw err;
        if (read.mayRetry()) continue;
        if (!((pinned === undefined || pinned === '') && attempt < CONFLICT_RETRIES)) throw err;
      }
    }
  }

  async delete(r: ResourceInfo, namespace: string | undefined, name: string, options: DeleteOptions, user: User): Promise<KubeObject | Status> {
    const dryRun = options.dryRun?.includes('All') === true;
    if (r.kind === 'Namespace' && (SYSTEM_NAMESPACES as readonly string[]).includes(name)) {
      throw new ApiError('Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, { name, kind: 'namespaces' });
    }
    const read = new ReadThenConfirm(this.objects, r, namespace, name, dryRun);
    for (let attempt = 0; ; attempt++) {
      const current = await read.next();
      if (current === undefined) continue;
      if (r.kind === 'Pod') {
        try {
          authorizePod(user, current as Pod);
        } catch (err) {
          if (err instanceof ApiError && read.mayRetry()) continue;
          throw err;
        }
      }
      const pre = options.preconditions;
      if ((pre?.uid !== undefined && pre.uid !== current.metadata.uid) || (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion)) {
        if (read.mayRetry()) continue;
        if (pre?.uid !== undefined && pre.uid !== current.metadata.uid) throw new ApiError('Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`);
        throw new ApiError('Conflict', `Precondition failed: ResourceVersion in precondition: ${pre!.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`);
      }
      const next = this.markDeleted(r, current, options);
      if (dryRun) return next ?? current;
      // A namespace already terminating as asked: nothing to write (its controller is at work).
      if (r.kind === 'Namespace' && next === current) return current;
      try {
        if (next !== undefined) return await this.objects.update(r, next, Number(current.metadata.resourceVersion));
        const revision = await this.objects.delete(r, namespace, name, Number(current.metadata.resourceVersion));
        return { ...current, metadata: { ...current.metadata, resourceVersion: String(revision) } };
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'Conflict')) throw err;
        if (read.mayRetry()) continue;
        if (attempt >= CONFLICT_RETRIES) throw err;
      }
    }
  }

  /**
   * Whether deleting waits (the object is marked with a deletionTimestamp and kept) or is
   * immediate (undefined). It waits for finalizers, for Foreground and Orphan propagation (the
   * garbage collector finishes them), for a pod on a node to be stopped within its grace
   * period, and for a namespace to be emptied (its `kubernetes` finalizer).
   */
  private markDeleted(r: ResourceInfo, current: KubeObject, options: DeleteOptions): KubeObject | undefined {
    const meta = current.metadata;
    const policy = options.propagationPolicy ?? (options.orphanDependents === true ? 'Orphan' : 'Background');
    const finalizers = [...(meta.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
    if (policy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
    if (r.kind === 'Namespace') return markNamespaceDeleted(current as Namespace, finalizers);
    let grace = 0;
    if (r.kind === 'Pod') {
      const pod = current as Pod;
      grace = options.gracePeriodSeconds ?? meta.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      // A pod no agent runs can go at once, as can one whose deletion is forced.
      if (pod.spec?.nodeName === undefined || pod.spec.nodeName === '' || grace === 0 || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') grace = 0;
    }
    if (finalizers.length === 0 && grace === 0) return undefined;
    if (meta.deletionTimestamp !== undefined && grace >= (meta.deletionGracePeriodSeconds ?? 0) && JSON.stringify(finalizers) === JSON.stringify(meta.finalizers ?? [])) {
      return current;
    }
    const next = structuredClone(current);
    next.metadata.deletionTimestamp = timestamp(Date.now() + grace * 1000);
    next.metadata.deletionGracePeriodSeconds = grace;
    if (finalizers.length > 0) next.metadata.finalizers = finalizers;
    return next;
  }

  async deleteCollection(r: ResourceInfo, namespace: string | undefined, q: URLSearchParams, options: DeleteOptions, user: User): Promise<Status> {
    const list = await this.objects.list(r, namespace, listOptions(q, r));
    let deleted = 0;
    for (const item of list.items) {
      try {
        await this.delete(r, item.metadata.namespace, item.metadata.name!, options, user);
        deleted++;
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
    }
    return successStatus(`deleted ${deleted} ${r.resource}`);
  }

  /** POST pods/{name}/binding: assign the pod to a node, once (what the scheduler does). */
  async bind(r: ResourceInfo, namespace: string, name: string, body: unknown): Promise<Status> {
    const b = body as Binding;
    const node = b?.target?.name;
    if (typeof node !== 'string' || node === '') throw new ApiError('BadRequest', 'a Binding needs target.name: the node to run the pod on');
    await this.guardedUpdate(r, namespace, name, undefined, false, (current) => {
      const pod = structuredClone(current) as Pod;
      // A binding names the pod it was decided for: one deleted and recreated under the
      // same name meanwhile is another pod (Kubernetes checks the same precondition).
      const uid = b.metadata?.uid;
      if (uid !== undefined && uid !== current.metadata.uid) throw new ApiError('Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata.uid}`);
      if (pod.metadata.deletionTimestamp !== undefined) throw new ApiError('Conflict', `pod ${name} is being deleted, cannot be assigned to a host`);
      if (pod.spec.nodeName !== undefined && pod.spec.nodeName !== '') throw new ApiError('Conflict', `pod ${name} is already assigned to node "${pod.spec.nodeName}"`);
      pod.spec.nodeName = node;
      const conditions = (pod.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled');
      pod.status = { ...pod.status, conditions: [...conditions, { type: 'PodScheduled', status: 'True', lastTransitionTime: timestamp() }] };
      return pod;
    });
    return successStatus('');
  }

  /** GET {deployments,replicasets}/{name}/scale. */
  async getScale(r: ResourceInfo, namespace: string, name: string): Promise<Scale> {
    return toScale(await this.objects.get(r, namespace, name));
  }

  /** PUT or PATCH of the scale subresource: changes spec.replicas. */
  async setScale(r: ResourceInfo, namespace: string, name: string, body: unknown, patchType: PatchType | undefined): Promise<Scale> {
    const updated = await this.guardedUpdate(r, namespace, name, undefined, false, (current) => {
      let scale = toScale(current) as unknown;
      if (patchType === undefined) scale = body;
      else scale = applyPatch(() => (patchType === 'json' ? jsonPatch(scale, body) : mergePatch(scale, body)));
      const s = scale as Scale;
      const pinned = s?.metadata?.resourceVersion;
      if (pinned !== undefined && pinned !== current.metadata.resourceVersion) throw conflict(r.resource, name, r.group);
      const replicas = s?.spec?.replicas;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        throw new ApiError('Invalid', `Scale "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`, {
          name,
          kind: 'Scale',
          causes: [{ reason: 'FieldValueInvalid', message: 'must be greater than or equal to 0', field: 'spec.replicas' }],
        });
      }
      const next = structuredClone(current) as Deployment;
      next.spec.replicas = replicas;
      return prepareUpdate(r, next, current, undefined);
    });
    return toScale(updated);
  }
}

/** Runs a patch; a patch that cannot apply is 400, one past a bound 413 (the bound named). */
function applyPatch(apply: () => unknown): unknown {
  try {
    return apply();
  } catch (err) {
    if (err instanceof PatchLimitError) throw new ApiError('RequestEntityTooLarge', `the patch cannot be applied: ${err.message}`);
    if (err instanceof PatchError) throw new ApiError('BadRequest', `the patch cannot be applied: ${err.message}`);
    throw err;
  }
}

function toScale(obj: KubeObject): Scale {
  const d = obj as Deployment;
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name: d.metadata.name!, namespace: d.metadata.namespace!, uid: d.metadata.uid!, resourceVersion: d.metadata.resourceVersion!, creationTimestamp: d.metadata.creationTimestamp! },
    spec: { replicas: d.spec?.replicas ?? 1 },
    status: { replicas: d.status?.replicas ?? 0, selector: formatSelector(fromLabelSelector(d.spec?.selector)) },
  };
}


/**
 * How a read-modify-write reads its object, as Kubernetes' GuaranteedUpdate does with its
 * watch cache: first from this master's own state (no round trip), since the write is a
 * transaction on the object's modRevision and cannot land on a stale read; once anything
 * would fail (not found, a precondition, a conflict), from a linearizable read, so every
 * answer the client gets was decided on the latest state.
 */
class ReadThenConfirm {
  constructor(
    private readonly objects: ObjectStore,
    private readonly r: ResourceInfo,
    private readonly namespace: string | undefined,
    private readonly name: string,
    /** Read linearizably from the start. */
    private fresh = false,
  ) {}

  /** The object; undefined when the local read found nothing and a linearizable one follows. */
  async next(): Promise<KubeObject | undefined> {
    try {
      return await this.objects.get(this.r, this.namespace, this.name, !this.fresh);
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound' && this.mayRetry()) return undefined;
      throw err;
    }
  }

  /** After a failure: true (once) if the attempt was on local state and should be re-read. */
  mayRetry(): boolean {
    if (this.fresh) return false;
    this.fresh = true;
    return true;
  }
}

/**
 * Marked for deletion, nothing holds it any more, and no grace period is left to wait out. A
 * namespace is also held by its spec.finalizers (Kubernetes' ShouldDeleteNamespaceDuringUpdate):
 * the update that removes the last one (the namespace controller's) deletes it.
 */
function finishesDeletion(obj: KubeObject): boolean {
  const m = obj.metadata;
  if (m.deletionTimestamp === undefined || (m.finalizers ?? []).length > 0) return false;
  if (obj.kind === 'Namespace') return ((obj as Namespace).spec?.finalizers ?? []).length === 0;
  return (m.deletionGracePeriodSeconds ?? 0) === 0;
}

/**
 * Deleting a namespace (Kubernetes' namespace REST Delete): it is marked with a
 * deletionTimestamp and phase Terminating, and kept while a finalizer holds it; one held by
 * nothing goes at once. A namespace made before namespaces carried the `kubernetes` finalizer
 * gets it now, so its content is removed too rather than left in a namespace that is gone.
 * Returns `current` itself when it is already marked as asked.
 */
function markNamespaceDeleted(current: Namespace, finalizers: string[]): KubeObject | undefined {
  const spec = Array.isArray(current.spec?.finalizers) ? current.spec.finalizers : [NAMESPACE_FINALIZER];
  if (spec.length === 0 && finalizers.length === 0) return undefined;
  const meta = current.metadata;
  if (meta.deletionTimestamp !== undefined && JSON.stringify(finalizers) === JSON.stringify(meta.finalizers ?? []) && current.status?.phase === 'Terminating') return current;
  const next = structuredClone(current);
  next.metadata.deletionTimestamp ??= timestamp();
  next.metadata.deletionGracePeriodSeconds = 0;
  if (finalizers.length > 0) next.metadata.finalizers = finalizers;
  next.spec = { ...next.spec, finalizers: [...spec] };
  next.status = { ...next.status, phase: 'Terminating' };
  return next;
}

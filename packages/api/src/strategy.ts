// What the API does to an object on its way into the store (Kubernetes' "strategies"):
// defaults, server-owned metadata, status handling per subresource, immutable fields.
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiError, invalid } from './errors.ts';
import { apiVersionOf, type ResourceInfo } from './resources.ts';
import type { Deployment, PodTemplateSpec, ReplicaSet } from './types/apps.ts';
import type { Namespace, Pod, PodSpec, Service } from './types/core.ts';
import type { KubeObject } from './types/meta.ts';
import { Errors, validateMeta, validateSpec, validateStatus } from './validation.ts';

/** Kubernetes timestamps: RFC 3339 in UTC with second precision. */
export function timestamp(ms = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The five random characters Kubernetes appends to a generateName. */
export function generatedName(prefix: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = randomBytes(5);
  return prefix + [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

function defaultPodSpec(spec: PodSpec | undefined): void {
  if (spec === undefined || typeof spec !== 'object') return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) {
    for (const p of Array.isArray(c?.ports) ? c.ports : []) p.protocol ??= 'TCP';
  }
}

function defaultTemplate(t: PodTemplateSpec | undefined): void {
  if (t !== undefined && typeof t === 'object') defaultPodSpec(t.spec);
}

/** Kubernetes' defaults for the fields Flotilla's components read. */
export function applyDefaults(r: ResourceInfo, obj: KubeObject): void {
  switch (r.kind) {
    case 'Pod':
      defaultPodSpec((obj as Pod).spec);
      return;
    case 'ReplicaSet': {
      const spec = (obj as ReplicaSet).spec;
      if (spec === undefined || typeof spec !== 'object') return;
      spec.replicas ??= 1;
      defaultTemplate(spec.template);
      return;
    }
    case 'Deployment': {
      const spec = (obj as Deployment).spec;
      if (spec === undefined || typeof spec !== 'object') return;
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      spec.strategy ??= { type: 'RollingUpdate' };
      spec.strategy.type ??= 'RollingUpdate';
      if (spec.strategy.type === 'RollingUpdate') {
        spec.strategy.rollingUpdate ??= {};
        spec.strategy.rollingUpdate.maxSurge ??= '25%';
        spec.strategy.rollingUpdate.maxUnavailable ??= '25%';
      }
      defaultTemplate(spec.template);
      return;
    }
    case 'Service': {
      const spec = ((obj as Service).spec ??= {});
      spec.type ??= 'ClusterIP';
      for (const p of Array.isArray(spec.ports) ? spec.ports : []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      return;
    }
    case 'Namespace': {
      // (The phase defaults; the conditions the namespace controller sets are kept.)
      const ns = obj as Namespace;
      const status = typeof ns.status === 'object' && ns.status !== null && !Array.isArray(ns.status) ? ns.status : {};
      ns.status = { ...status, phase: status.phase ?? 'Active' };
      return;
    }
    default:
      return;
  }
}

/**
 * Everything a request body must get right before it is stored; throws 400 or 422. The status
 * is checked unless it is the stored one (`newStatus` false), which was checked when written.
 */
export function validate(r: ResourceInfo, obj: KubeObject, newStatus = true): void {
  const e = new Errors();
  validateMeta(e, obj.metadata, { namespaced: r.namespaced, nameRule: r.nameRule });
  validateSpec(r.kind, obj, e);
  if (newStatus) validateStatus(r.kind, obj, e);
  if (e.list.length > 0) throw invalid(r.kind, obj.metadata?.name ?? obj.metadata?.generateName ?? '', e.list, r.group);
}

/** Checks a request body's kind, apiVersion and namespace against the URL it was sent to. */
export function checkBody(r: ResourceInfo, body: unknown, namespace: string | undefined, name?: string): KubeObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('BadRequest', 'the request body must be a JSON object');
  const obj = body as KubeObject;
  const want = apiVersionOf(r);
  if (obj.apiVersion !== undefined && obj.apiVersion !== want) throw new ApiError('BadRequest', `the API version in the data (${obj.apiVersion}) does not match the expected API version (${want})`);
  if (obj.kind !== undefined && obj.kind !== r.kind) throw new ApiError('BadRequest', `the kind in the data (${obj.kind}) does not match the expected kind (${r.kind})`);
  obj.apiVersion = want;
  obj.kind = r.kind;
  if (typeof obj.metadata !== 'object' || obj.metadata === null || Array.isArray(obj.metadata)) obj.metadata = {};
  if (r.namespaced) {
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== '' && obj.metadata.namespace !== namespace) {
      throw new ApiError('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    obj.metadata.namespace = namespace!;
  } else {
    delete obj.metadata.namespace;
  }
  if (name !== undefined && obj.metadata.name !== undefined && obj.metadata.name !== name) {
    throw new ApiError('BadRequest', `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
  }
  if (name !== undefined) obj.metadata.name = name;
  return obj;
}

/** Server-owned metadata and status of a new object. */
export function prepareCreate(r: ResourceInfo, obj: KubeObject): KubeObject {
  applyDefaults(r, obj);
  const meta = obj.metadata;
  delete meta.resourceVersion;
  delete meta.deletionTimestamp;
  delete meta.deletionGracePeriodSeconds;
  meta.uid = randomUUID();
  meta.creationTimestamp = timestamp();
  meta.generation = 1;
  if (r.kind === 'Namespace') prepareNamespaceCreate(obj as Namespace);
  if (r.kind === 'Pod') obj.status = { phase: 'Pending', ...(obj.status as object | undefined), conditions: (obj as Pod).status?.conditions ?? [] };
  else if (r.subresources.includes('status') && r.kind !== 'Node' && r.kind !== 'Namespace') delete obj.status;
  validate(r, obj);
  return obj;
}

/** The finalizer of the namespace controller: a namespace is removed only once its content is. */
export const NAMESPACE_FINALIZER = 'kubernetes';

/** As Kubernetes' namespace strategy: a new namespace is Active and carries the `kubernetes` finalizer. */
function prepareNamespaceCreate(ns: Namespace): void {
  const spec = typeof ns.spec === 'object' && ns.spec !== null && !Array.isArray(ns.spec) ? ns.spec : {};
  const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers : [];
  ns.spec = { ...spec, finalizers: finalizers.includes(NAMESPACE_FINALIZER) ? finalizers : [...finalizers, NAMESPACE_FINALIZER] };
  ns.status = { phase: 'Active' };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Merges an update with the stored object. A main-resource update keeps the stored status;
 * a status update keeps everything but the status. Immutable fields cannot change.
 */
export function prepareUpdate(r: ResourceInfo, next: KubeObject, old: KubeObject, subresource: 'status' | 'finalize' | undefined): KubeObject {
  if (subresource === 'finalize') {
    // PUT namespaces/NAME/finalize: only spec.finalizers changes (Kubernetes' finalizeStrategy).
    const finalizers = (next as Namespace).spec?.finalizers;
    const merged = { ...old, spec: { ...(old as Namespace).spec, finalizers: Array.isArray(finalizers) ? finalizers : [] }, metadata: { ...old.metadata } } as KubeObject;
    validate(r, merged);
    return merged;
  }
  applyDefaults(r, next);
  if (subresource === 'status') {
    const merged: KubeObject = { ...old, status: next.status, metadata: { ...old.metadata } };
    validate(r, merged);
    return merged;
  }
  const e = new Errors();
  const meta = next.metadata;
  if (meta.uid !== undefined && meta.uid !== '' && meta.uid !== old.metadata.uid) e.invalid('metadata.uid', meta.uid, 'field is immutable');
  meta.uid = old.metadata.uid!;
  // As in Kubernetes, a changed creationTimestamp is ignored rather than refused (clients
  // re-serialize it with other precision, e.g. "…:55.000Z").
  meta.creationTimestamp = old.metadata.creationTimestamp!;
  if (old.metadata.deletionTimestamp !== undefined) {
    meta.deletionTimestamp = old.metadata.deletionTimestamp;
    if (old.metadata.deletionGracePeriodSeconds !== undefined) meta.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds;
  } else {
    delete meta.deletionTimestamp;
  }
  if (r.subresources.includes('status')) next.status = old.status;
  const specKey = r.kind === 'Endpoints' ? 'subsets' : 'spec';
  const specChanged = !same((next as unknown as Record<string, unknown>)[specKey], (old as unknown as Record<string, unknown>)[specKey]);
  meta.generation = (old.metadata.generation ?? 1) + (specChanged ? 1 : 0);
  immutables(r, next, old, e);
  if (e.list.length > 0) throw invalid(r.kind, meta.name ?? '', e.list, r.group);
  validate(r, next, !r.subresources.includes('status'));
  return next;
}

function immutables(r: ResourceInfo, next: KubeObject, old: KubeObject, e: Errors): void {
  switch (r.kind) {
    case 'Pod': {
      const a = (next as Pod).spec;
      const b = (old as Pod).spec;
      if (b?.nodeName !== undefined && a?.nodeName !== b.nodeName) e.invalid('spec.nodeName', a?.nodeName, 'field is immutable once the pod is bound');
      // Kubernetes lets an update change only images, tolerations (added) and the grace period.
      const masked = (s: PodSpec | undefined) => ({ ...s, nodeName: undefined, tolerations: undefined, terminationGracePeriodSeconds: undefined, containers: s?.containers?.map((c) => ({ ...c, image: undefined })) });
      if (!same(masked(a), masked(b))) e.forbidden('spec', 'pod updates may not change fields other than `spec.containers[*].image`, `spec.tolerations` (only additions) and `spec.terminationGracePeriodSeconds`');
      return;
    }
    case 'Deployment':
    case 'ReplicaSet': {
      const a = (next as Deployment).spec?.selector;
      const b = (old as Deployment).spec?.selector;
      if (!same(a, b)) e.invalid('spec.selector', a, 'field is immutable');
      return;
    }
    case 'Service': {
      const b = (old as Service).spec?.clusterIP;
      const a = (next as Service).spec?.clusterIP;
      if (b !== undefined && b !== '' && a !== undefined && a !== b) e.invalid('spec.clusterIP', a, 'field is immutable');
      if (b !== undefined && (next as Service).spec !== undefined) (next as Service).spec!.clusterIP = b;
      return;
    }
    default:
      return;
  }
}

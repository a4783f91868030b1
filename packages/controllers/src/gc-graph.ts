// The garbage collector's view of ownership (Kubernetes' GraphBuilder, reduced): which cached
// objects name which owner uid. It is derived only from informer events, so after a restart it
// is rebuilt from the caches and needs no state of its own.
import type { KubeObject, OwnerReference } from '@flotilla/api';

/** An object as the collector queues it: `resource/namespace/name` ('' namespace: cluster-scoped). */
export type ItemKey = string;

export function itemKey(resource: string, obj: KubeObject): ItemKey {
  return `${resource}/${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

export function parseItemKey(key: ItemKey): { resource: string; namespace: string | undefined; name: string } {
  const [resource = '', namespace = '', name = ''] = key.split('/');
  return { resource, namespace: namespace === '' ? undefined : namespace, name };
}

export class OwnerIndex {
  /** Owner uid → the keys of the objects naming it. */
  private readonly dependents = new Map<string, Set<ItemKey>>();
  /** Object key → the owner uids it was indexed under. */
  private readonly owners = new Map<ItemKey, string[]>();

  /** Indexes `obj` (or forgets it when `obj` is undefined) under its current owner uids. */
  set(key: ItemKey, obj: KubeObject | undefined): void {
    for (const uid of this.owners.get(key) ?? []) {
      const deps = this.dependents.get(uid);
      deps?.delete(key);
      if (deps?.size === 0) this.dependents.delete(uid);
    }
    this.owners.delete(key);
    const uids = (obj?.metadata.ownerReferences ?? []).map((r) => r.uid);
    if (uids.length === 0) return;
    this.owners.set(key, uids);
    for (const uid of uids) {
      let deps = this.dependents.get(uid);
      if (deps === undefined) this.dependents.set(uid, (deps = new Set()));
      deps.add(key);
    }
  }

  dependentsOf(uid: string | undefined): ItemKey[] {
    return uid === undefined ? [] : [...(this.dependents.get(uid) ?? [])];
  }
}

export function refTo(obj: KubeObject, ownerUid: string | undefined): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r) => r.uid === ownerUid);
}

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return (obj.metadata.finalizers ?? []).includes(finalizer);
}

/** Being deleted in the foreground: it waits for its blocking dependents (deletingDependents). */
export function isDeletingDependents(obj: KubeObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined && hasFinalizer(obj, FINALIZER_FOREGROUND);
}

export const FINALIZER_FOREGROUND = 'foregroundDeletion';
export const FINALIZER_ORPHAN = 'orphan';

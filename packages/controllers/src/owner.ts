// Controller references and label selectors, as Kubernetes' ControllerRefManager
// (pkg/controller/controller_ref_manager.go): an object belongs to at most one controller
// (the ownerReference with controller=true); a controller adopts orphans its selector matches
// and releases what it owns but no longer matches. Adoption and release are patches pinned to
// the object's resourceVersion, so a concurrent change makes them fail (409) and retry.
import { ApiError, fromLabelSelector, matches, type ApiClient, type KubeObject, type LabelSelector, type OwnerReference, type Selector } from '@flotilla/api';

/** The ownerReference that names `obj`'s managing controller, if any. */
export function controllerRefOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** A controller ownerReference to `owner`, blocking its foreground deletion as Kubernetes' do. */
export function newControllerRef(owner: KubeObject): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name ?? '', uid: owner.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}

export function isControlledBy(obj: KubeObject, owner: KubeObject): boolean {
  const ref = controllerRefOf(obj);
  return ref !== undefined && ref.uid === owner.metadata.uid;
}

/** The parsed form of a controller's LabelSelector (use `selects` to test objects against it). */
export function selectorFor(sel: LabelSelector): Selector {
  return fromLabelSelector(sel);
}

export function selects(selector: Selector, obj: KubeObject): boolean {
  // An empty selector would match everything: for a controller that is a mistake, not a wish.
  return selector.length > 0 && matches(selector, obj.metadata.labels);
}

export interface ClaimOptions<T extends KubeObject> {
  readonly client: ApiClient;
  /** The resource of the claimed objects ("pods", "replicasets"). */
  readonly resource: string;
  readonly owner: KubeObject;
  /** The owner's resource, to re-read it before adopting ("replicasets", "deployments"). */
  readonly ownerResource: string;
  readonly selector: Selector;
  readonly candidates: readonly T[];
}

/**
 * ClaimObjects: returns the candidates `owner` controls after adopting matching orphans and
 * releasing owned objects that stopped matching. Objects other controllers own are left alone.
 * Errors other than NotFound/Conflict-on-gone are thrown so the caller's sync retries.
 */
export async function claimObjects<T extends KubeObject>(o: ClaimOptions<T>): Promise<T[]> {
  const claimed: T[] = [];
  let canAdopt: boolean | undefined;
  // As RecheckDeletionTimestamp: adopting on behalf of an owner that is being deleted (or was
  // replaced by a namesake) would leak the orphan into the garbage collector's hands.
  const recheck = async (): Promise<boolean> => {
    if (canAdopt !== undefined) return canAdopt;
    try {
      const fresh = await o.client.get<KubeObject>(o.ownerResource, o.owner.metadata.namespace, o.owner.metadata.name ?? '');
      canAdopt = fresh.metadata.uid === o.owner.metadata.uid && fresh.metadata.deletionTimestamp === undefined;
    } catch (err) {
      if (isNotFound(err)) canAdopt = false;
      else throw err;
    }
    return canAdopt;
  };
  for (const obj of o.candidates) {
    const ref = controllerRefOf(obj);
    const matched = selects(o.selector, obj);
    if (ref !== undefined) {
      if (ref.uid !== o.owner.metadata.uid) continue;
      if (matched) {
        claimed.push(obj);
        continue;
      }
      // An owner being deleted keeps what it has: the garbage collector decides.
      if (o.owner.metadata.deletionTimestamp !== undefined) continue;
      await release(o.client, o.resource, obj, o.owner);
      continue;
    }
    if (!matched || o.owner.metadata.deletionTimestamp !== undefined || obj.metadata.deletionTimestamp !== undefined) continue;
    if (!(await recheck())) continue;
    const adopted = await adopt(o.client, o.resource, obj, o.owner);
    if (adopted !== undefined) claimed.push(adopted);
  }
  return claimed;
}

/** Patches a controller ownerReference into an orphan, pinned to the version we saw. */
async function adopt<T extends KubeObject>(client: ApiClient, resource: string, obj: T, owner: KubeObject): Promise<T | undefined> {
  const refs = [...(obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid), newControllerRef(owner)];
  try {
    return await client.patch<T>(resource, obj.metadata.namespace, obj.metadata.name ?? '', { metadata: { ownerReferences: refs, resourceVersion: obj.metadata.resourceVersion } });
  } catch (err) {
    // Gone: nothing to adopt. A conflict is thrown: the sync retries on a fresher cache.
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Removes `owner`'s reference from an object that no longer matches its selector. */
async function release(client: ApiClient, resource: string, obj: KubeObject, owner: KubeObject): Promise<void> {
  const refs = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
  try {
    await client.patch(resource, obj.metadata.namespace, obj.metadata.name ?? '', { metadata: { ownerReferences: refs.length === 0 ? null : refs, resourceVersion: obj.metadata.resourceVersion } });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.reason === 'NotFound';
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.reason === 'Conflict';
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiError && err.reason === 'AlreadyExists';
}

/** The owners in `owners` whose selector matches `obj` (for orphans: who might adopt it). */
export function matchingOwners<O extends KubeObject & { spec: { selector: LabelSelector } }>(owners: readonly O[], obj: KubeObject): O[] {
  return owners.filter((o) => o.metadata.namespace === obj.metadata.namespace && selects(selectorFor(o.spec.selector), obj));
}

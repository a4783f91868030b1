// The Deployment controller, as Kubernetes' pkg/controller/deployment (deployment_controller.go,
// sync.go, rolling.go, recreate.go, progress.go): a Deployment owns one ReplicaSet per pod
// template (named <deployment>-<template hash>); a rollout moves replicas from the old ones to
// the new one within maxSurge/maxUnavailable (RollingUpdate) or after the old pods are gone
// (Recreate). It only ever changes ReplicaSets' spec.replicas (with their resourceVersion as
// precondition) and annotations; the ReplicaSet controller makes and removes the pods.
import { WorkQueue, objectKey, timestamp, type ApiClient, type Deployment, type DeploymentStatus, type Informer, type Pod, type ReplicaSet } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';
import { claimObjects, controllerRefOf, isAlreadyExists, isControlledBy, isNotFound, matchingOwners, newControllerRef, selectorFor, selects } from './owner.ts';
import { isPodFinished } from './pod-util.ts';
import {
  POD_TEMPLATE_HASH_LABEL,
  REASONS,
  REVISION_ANNOTATION,
  actualReplicaCount,
  availableReplicaCount,
  byCreation,
  byRevision,
  bySize,
  computeHash,
  deploymentComplete,
  deploymentProgressing,
  deploymentTimedOut,
  desiredReplicasAnnotation,
  equalIgnoreHash,
  filterActive,
  findActiveOrLatest,
  findNewReplicaSet,
  getCondition,
  hasProgressDeadline,
  isRollingUpdate,
  isSaturated,
  maxRevision,
  maxSurge,
  maxUnavailable,
  newCondition,
  newRSNewReplicas,
  proportion,
  readyReplicaCount,
  removeCondition,
  ReplicaSetView,
  replicaCount,
  replicasAnnotationsNeedUpdate,
  setCondition,
  setNewReplicaSetAnnotations,
  setReplicasAnnotations,
  settledAvailableCount,
  specReplicas,
  stableJson,
} from './deployment-util.ts';

/** The Deployment being synced, replaced by what the API returns after each write. */
interface SyncState {
  d: Deployment;
  readonly key: string;
}

export interface DeploymentControllerOptions {
  /** Workers (default 2). */
  readonly concurrency?: number;
}

export class DeploymentController implements Controller {
  readonly name = 'deployment';
  private readonly client: ApiClient;
  private readonly now: () => number;
  private readonly dInformer: Informer<Deployment>;
  private readonly rsInformer: Informer<ReplicaSet>;
  private readonly podInformer: Informer<Pod>;
  private readonly queue: WorkQueue;
  private started = false;
  private stopped = false;

  constructor(ctx: ControllerContext, options: DeploymentControllerOptions = {}) {
    this.client = ctx.client;
    this.now = ctx.now;
    this.queue = new WorkQueue((key) => this.sync(key), { concurrency: options.concurrency ?? 2, name: 'deployment', logger: ctx.logger });
    this.dInformer = ctx.informers.informer<Deployment>('deployments');
    this.rsInformer = ctx.informers.informer<ReplicaSet>('replicasets');
    this.podInformer = ctx.informers.informer<Pod>('pods');
    this.dInformer.on({ add: (d) => this.enqueue(d), update: (_, d) => this.enqueue(d), delete: (d) => this.enqueue(d) });
    this.rsInformer.on({ add: (rs) => this.onReplicaSet(undefined, rs), update: (old, rs) => this.onReplicaSet(old, rs), delete: (rs) => this.onReplicaSet(undefined, rs) });
    this.podInformer.on({ delete: (p) => this.deletePod(p) });
  }

  start(): void {
    this.started = true;
    for (const d of this.dInformer.list()) this.enqueue(d);
  }

  stop(): void {
    this.stopped = true;
    this.queue.stop();
  }

  /** Resolves when no sync is queued or running (tests; timers may still add later). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private enqueue(d: Deployment): void {
    if (this.started) this.queue.add(objectKey(d));
  }

  private ownerOf(rs: ReplicaSet): Deployment | undefined {
    const ref = controllerRefOf(rs);
    if (ref === undefined || ref.kind !== 'Deployment') return undefined;
    const d = this.dInformer.get(rs.metadata.namespace, ref.name);
    return d?.metadata.uid === ref.uid ? d : undefined;
  }

  /** addReplicaSet / updateReplicaSet / deleteReplicaSet: wake the owner, or whoever may adopt an orphan. */
  private onReplicaSet(old: ReplicaSet | undefined, rs: ReplicaSet): void {
    if (old !== undefined) {
      const prev = this.ownerOf(old);
      if (prev !== undefined && prev.metadata.uid !== controllerRefOf(rs)?.uid) this.enqueue(prev);
    }
    const owner = this.ownerOf(rs);
    if (owner !== undefined) return this.enqueue(owner);
    if (controllerRefOf(rs) === undefined) for (const d of matchingOwners(this.dInformer.listIn(rs.metadata.namespace), rs)) this.enqueue(d);
  }

  /** A Recreate rollout waits for the old pods to be gone: their deletion may unblock it. */
  private deletePod(pod: Pod): void {
    const ref = controllerRefOf(pod);
    if (ref === undefined || ref.kind !== 'ReplicaSet') return;
    const rs = this.rsInformer.get(pod.metadata.namespace, ref.name);
    const d = rs === undefined || rs.metadata.uid !== ref.uid ? undefined : this.ownerOf(rs);
    if (d !== undefined && d.spec.strategy?.type === 'Recreate') this.enqueue(d);
  }

  // ---- the sync ----

  private async sync(key: string): Promise<void> {
    if (this.stopped) return;
    const cached = this.dInformer.getByKey(key);
    if (cached === undefined) return;
    const s: SyncState = { d: structuredClone(cached), key };
    const rsList = await this.getReplicaSetsForDeployment(s.d);
    if (s.d.metadata.deletionTimestamp !== undefined) {
      const view = await this.getAllReplicaSetsAndSyncRevision(s, rsList, false);
      return this.syncDeploymentStatus(s, view);
    }
    await this.checkPausedConditions(s);
    if (s.d.spec.paused === true || this.isScalingEvent(s.d, rsList)) return this.syncScale(s, rsList);
    if (s.d.spec.strategy?.type === 'Recreate') return this.rolloutRecreate(s, rsList);
    return this.rolloutRolling(s, rsList);
  }

  /** The ReplicaSets this Deployment controls, after adopting and releasing (getReplicaSetsForDeployment). */
  private async getReplicaSetsForDeployment(d: Deployment): Promise<ReplicaSet[]> {
    const candidates = this.rsInformer.listIn(d.metadata.namespace);
    return claimObjects({ client: this.client, resource: 'replicasets', owner: d, ownerResource: 'deployments', selector: selectorFor(d.spec.selector), candidates });
  }

  /** isScalingEvent: an active RS was sized for another spec.replicas than the Deployment's now. */
  private isScalingEvent(d: Deployment, rsList: readonly ReplicaSet[]): boolean {
    const desired = d.spec.replicas ?? 1;
    return filterActive(rsList).some((rs) => {
      const annotated = desiredReplicasAnnotation(rs);
      return annotated !== undefined && annotated !== desired;
    });
  }

  /**
   * getAllReplicaSetsAndSyncRevision: splits new from old, brings the new RS's revision (max
   * of the old ones + 1), annotations and minReadySeconds up to date, and creates the new RS
   * when `create` is set and there is none.
   */
  private async getAllReplicaSetsAndSyncRevision(s: SyncState, rsList: readonly ReplicaSet[], create: boolean): Promise<ReplicaSetView> {
    const existing = findNewReplicaSet(s.d, rsList);
    const view = new ReplicaSetView(rsList, existing);
    const newRevision = maxRevision(view.old) + 1;
    if (existing !== undefined) {
      const copy = structuredClone(existing);
      const annotationsChanged = setNewReplicaSetAnnotations(s.d, copy, newRevision, true);
      const minReady = s.d.spec.minReadySeconds ?? 0;
      let rs = existing;
      if (annotationsChanged || (copy.spec.minReadySeconds ?? 0) !== minReady) {
        copy.spec.minReadySeconds = minReady;
        rs = await this.client.update('replicasets', copy);
        view.setNew(rs);
      }
      await this.setDeploymentRevision(s, rs.metadata.annotations?.[REVISION_ANNOTATION] ?? String(newRevision));
      if (hasProgressDeadline(s.d) && getCondition(s.d.status, 'Progressing') === undefined) {
        const status = structuredClone(s.d.status ?? {});
        setCondition(status, newCondition('Progressing', 'True', REASONS.foundNewRS, `Found new replica set "${rs.metadata.name ?? ''}"`, this.stamp()));
        await this.writeStatus(s, status);
      }
      return view;
    }
    if (!create) return view;
    const created = await this.createNewReplicaSet(s, view, newRevision);
    view.setNew(created);
    return view;
  }

  private async createNewReplicaSet(s: SyncState, view: ReplicaSetView, newRevision: number): Promise<ReplicaSet> {
    const d = s.d;
    const template = structuredClone(d.spec.template);
    const hash = computeHash(template);
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, [POD_TEMPLATE_HASH_LABEL]: hash } };
    const selector = structuredClone(d.spec.selector);
    selector.matchLabels = { ...selector.matchLabels, [POD_TEMPLATE_HASH_LABEL]: hash };
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: `${d.metadata.name ?? ''}-${hash}`, namespace: d.metadata.namespace ?? 'default', labels: { ...template.metadata.labels }, ownerReferences: [newControllerRef(d)] },
      spec: { replicas: 0, minReadySeconds: d.spec.minReadySeconds ?? 0, selector, template },
    };
    rs.spec.replicas = newRSNewReplicas(d, [...view.old, rs], rs);
    setNewReplicaSetAnnotations(d, rs, newRevision, false);
    let created: ReplicaSet;
    let alreadyExists = false;
    try {
      created = await this.client.create('replicasets', rs);
    } catch (err) {
      if (!isAlreadyExists(err)) {
        if (hasProgressDeadline(d)) {
          const status = structuredClone(d.status ?? {});
          setCondition(status, newCondition('Progressing', 'False', REASONS.failedRSCreate, `Failed to create new replica set "${rs.metadata.name ?? ''}": ${(err as Error).message}`, this.stamp()));
          await this.writeStatus(s, status);
        }
        throw err;
      }
      // Our own create, not yet in the informer (a slow watch): use it. Anything else with
      // that name is a hash collision Kubernetes resolves with status.collisionCount.
      const live = await this.client.get<ReplicaSet>('replicasets', rs.metadata.namespace, rs.metadata.name ?? '');
      if (!isControlledBy(live, d) || !equalIgnoreHash(live.spec.template, d.spec.template)) {
        throw new Error(`replica set ${rs.metadata.name ?? ''} exists and is not this deployment's: a pod-template-hash collision`);
      }
      created = live;
      alreadyExists = true;
    }
    await this.setDeploymentRevision(s, String(newRevision));
    if (!alreadyExists && hasProgressDeadline(s.d)) {
      const status = structuredClone(s.d.status ?? {});
      setCondition(status, newCondition('Progressing', 'True', REASONS.newReplicaSetCreated, `Created new replica set "${created.metadata.name ?? ''}"`, this.stamp()));
      await this.writeStatus(s, status);
    }
    return created;
  }

  /** The Deployment carries its new RS's revision (what `kubectl rollout history` reads). */
  private async setDeploymentRevision(s: SyncState, revision: string): Promise<void> {
    if (s.d.metadata.annotations?.[REVISION_ANNOTATION] === revision) return;
    const next = structuredClone(s.d);
    next.metadata.annotations = { ...next.metadata.annotations, [REVISION_ANNOTATION]: revision };
    // Flotilla's status subresource keeps metadata (Kubernetes' lets annotations through), so
    // the annotation is a write of the main resource; spec is unchanged, so is generation.
    s.d = await this.client.update('deployments', next);
  }

  /**
   * Writes the status unless it is what is stored already. Flotilla's API stores an unchanged
   * object under a new resourceVersion (Kubernetes' does not), and the watch event that follows
   * wakes this controller again: a sync that writes the same status on every pass and then fails
   * (a ReplicaSet create refused, as in a deleted namespace) used to go round ~150 times a
   * second (issue 12).
   */
  private async writeStatus(s: SyncState, status: DeploymentStatus): Promise<void> {
    if (stableJson(status) === stableJson(s.d.status ?? {})) return;
    s.d = await this.client.update('deployments', { ...s.d, status }, 'status');
  }

  private stamp(): string {
    return timestamp(this.now());
  }

  /** checkPausedConditions: Progressing=Unknown with DeploymentPaused / DeploymentResumed. */
  private async checkPausedConditions(s: SyncState): Promise<void> {
    if (!hasProgressDeadline(s.d)) return;
    const cond = getCondition(s.d.status, 'Progressing');
    if (cond?.reason === REASONS.timedOut) return;
    const pausedCond = cond?.reason === REASONS.paused;
    const paused = s.d.spec.paused === true;
    if (paused === pausedCond) return;
    const status = structuredClone(s.d.status ?? {});
    if (paused) setCondition(status, newCondition('Progressing', 'Unknown', REASONS.paused, 'Deployment is paused', this.stamp()));
    else setCondition(status, newCondition('Progressing', 'Unknown', REASONS.resumed, 'Deployment is resumed', this.stamp()));
    await this.writeStatus(s, status);
  }

  // ---- scaling (sync.go) ----

  /** sync: a paused Deployment or a change of spec.replicas: resize, do not roll out. */
  private async syncScale(s: SyncState, rsList: readonly ReplicaSet[]): Promise<void> {
    const view = await this.getAllReplicaSetsAndSyncRevision(s, rsList, false);
    await this.scale(s, view);
    if (s.d.spec.paused === true) await this.cleanupDeployment(s, view.old);
    await this.syncDeploymentStatus(s, view);
  }

  /**
   * scale: a single active RS (or, with none, the newest) simply takes spec.replicas; a
   * saturated new RS means the old ones go to 0; otherwise, during a rolling update, the
   * difference is shared out in proportion to the RSs' sizes, largest first.
   */
  private async scale(s: SyncState, view: ReplicaSetView): Promise<void> {
    const d = s.d;
    const desired = d.spec.replicas ?? 1;
    const target = findActiveOrLatest(view.newRS, view.old);
    if (target !== undefined) {
      if (specReplicas(target) !== desired) await this.scaleReplicaSet(s, view, target, desired);
      return;
    }
    if (isSaturated(d, view.newRS)) {
      for (const old of filterActive(view.old)) await this.scaleReplicaSet(s, view, old, 0);
      return;
    }
    if (!isRollingUpdate(d)) return;
    const active = filterActive(view.all);
    const allowed = desired > 0 ? desired + maxSurge(d) : 0;
    const toAdd = allowed - replicaCount(active);
    if (toAdd > 0) active.sort(bySize(true));
    else if (toAdd < 0) active.sort(bySize(false));
    let added = 0;
    const sizes = new Map<ReplicaSet, number>();
    for (const rs of active) {
      if (toAdd === 0) {
        sizes.set(rs, specReplicas(rs));
        continue;
      }
      const p = proportion(rs, d, toAdd, added);
      sizes.set(rs, specReplicas(rs) + p);
      added += p;
    }
    for (const [i, rs] of active.entries()) {
      let size = sizes.get(rs) ?? specReplicas(rs);
      // Leftovers of rounding go to the largest RS.
      if (i === 0 && toAdd !== 0) size = Math.max(0, size + toAdd - added);
      await this.scaleReplicaSet(s, view, rs, size);
    }
  }

  /**
   * scaleReplicaSet: writes spec.replicas and the desired/max annotations (pinned to the RS's
   * resourceVersion: a concurrent change is a 409 and the whole sync retries on fresh state).
   * Returns whether the size changed.
   */
  private async scaleReplicaSet(s: SyncState, view: ReplicaSetView, rs: ReplicaSet, size: number): Promise<boolean> {
    const desired = s.d.spec.replicas ?? 1;
    const max = desired + maxSurge(s.d);
    const resize = specReplicas(rs) !== size;
    if (!resize && !replicasAnnotationsNeedUpdate(rs, desired, max)) return false;
    const copy = structuredClone(rs);
    copy.spec.replicas = size;
    setReplicasAnnotations(copy, desired, max);
    view.put(await this.client.update('replicasets', copy));
    return resize;
  }

  /** scaleReplicaSetAndRecordEvent: only when the size differs. */
  private async scaleTo(s: SyncState, view: ReplicaSetView, rs: ReplicaSet, size: number): Promise<boolean> {
    if (specReplicas(rs) === size) return false;
    return this.scaleReplicaSet(s, view, rs, size);
  }

  // ---- rolling update (rolling.go) ----

  private async rolloutRolling(s: SyncState, rsList: readonly ReplicaSet[]): Promise<void> {
    const view = await this.getAllReplicaSetsAndSyncRevision(s, rsList, true);
    if (await this.reconcileNewReplicaSet(s, view)) return this.syncRolloutStatus(s, view);
    if (await this.reconcileOldReplicaSets(s, view)) return this.syncRolloutStatus(s, view);
    if (deploymentComplete(s.d, s.d.status ?? {})) await this.cleanupDeployment(s, view.old);
    return this.syncRolloutStatus(s, view);
  }

  /** Scales the new RS up as far as maxSurge allows (or down to spec.replicas). */
  private async reconcileNewReplicaSet(s: SyncState, view: ReplicaSetView): Promise<boolean> {
    const newRS = view.newRS;
    if (newRS === undefined) return false;
    const desired = s.d.spec.replicas ?? 1;
    if (specReplicas(newRS) === desired) return false;
    if (specReplicas(newRS) > desired) return this.scaleTo(s, view, newRS, desired);
    return this.scaleTo(s, view, newRS, newRSNewReplicas(s.d, view.all, newRS));
  }

  /**
   * Scales old RSs down as far as maxUnavailable allows: first their unhealthy replicas (they
   * would block the rollout), then, oldest first, as many as keep minAvailable available.
   */
  private async reconcileOldReplicaSets(s: SyncState, view: ReplicaSetView): Promise<boolean> {
    const d = s.d;
    const newRS = view.newRS;
    const oldCount = replicaCount(view.old);
    if (oldCount === 0 || newRS === undefined) return false;
    const minAvailable = (d.spec.replicas ?? 1) - maxUnavailable(d);
    const newUnavailable = specReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
    const maxScaledDown = replicaCount(view.all) - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    let cleaned = 0;
    for (const rs of filterActive(view.old).sort(byCreation)) {
      if (cleaned >= maxScaledDown) break;
      const unhealthy = specReplicas(rs) - (rs.status?.availableReplicas ?? 0);
      if (unhealthy <= 0) continue;
      const n = Math.min(maxScaledDown - cleaned, unhealthy);
      await this.scaleTo(s, view, rs, specReplicas(rs) - n);
      cleaned += n;
    }
    // scaleDownOldReplicaSetsForRollingUpdate. Availability is counted as it will be once each
    // RS reaches its spec (see settledAvailableCount), so a scale-down the RS controller has
    // not yet reported cannot be counted twice.
    let scaled = 0;
    const available = settledAvailableCount(view.all);
    if (available > minAvailable) {
      const total = available - minAvailable;
      for (const rs of filterActive(view.old).sort(byCreation)) {
        if (scaled >= total) break;
        const n = Math.min(specReplicas(rs), total - scaled);
        await this.scaleTo(s, view, rs, specReplicas(rs) - n);
        scaled += n;
      }
    }
    return cleaned + scaled > 0;
  }

  // ---- recreate (recreate.go) ----

  private async rolloutRecreate(s: SyncState, rsList: readonly ReplicaSet[]): Promise<void> {
    // The new RS is not created yet, so that nothing scales up before the old pods are gone.
    let view = await this.getAllReplicaSetsAndSyncRevision(s, rsList, false);
    let scaledDown = false;
    for (const rs of filterActive(view.old)) if (await this.scaleTo(s, view, rs, 0)) scaledDown = true;
    if (scaledDown || this.oldPodsRunning(s.d, view)) return this.syncRolloutStatus(s, view);
    if (view.newRS === undefined) view = await this.getAllReplicaSetsAndSyncRevision(s, view.all, true);
    const newRS = view.newRS;
    if (newRS !== undefined) await this.scaleTo(s, view, newRS, s.d.spec.replicas ?? 1);
    if (deploymentComplete(s.d, s.d.status ?? {})) await this.cleanupDeployment(s, view.old);
    return this.syncRolloutStatus(s, view);
  }

  /** oldPodsRunning: old RSs still report pods, or the cache holds a not-finished pod of one. */
  private oldPodsRunning(d: Deployment, view: ReplicaSetView): boolean {
    if (actualReplicaCount(view.old) > 0) return true;
    const oldUids = new Set(view.old.map((rs) => rs.metadata.uid));
    const selector = selectorFor(d.spec.selector);
    return this.podInformer.listIn(d.metadata.namespace).some((p) => {
      if (!selects(selector, p)) return false;
      const ref = controllerRefOf(p);
      return ref !== undefined && oldUids.has(ref.uid) && !isPodFinished(p);
    });
  }

  // ---- history and status (sync.go, progress.go) ----

  /** cleanupDeployment: deletes the oldest idle RSs beyond revisionHistoryLimit. */
  private async cleanupDeployment(s: SyncState, oldRSs: readonly ReplicaSet[]): Promise<void> {
    const limit = s.d.spec.revisionHistoryLimit;
    if (limit === undefined) return;
    const cleanable = oldRSs.filter((rs) => rs.metadata.deletionTimestamp === undefined).sort(byRevision);
    const diff = cleanable.length - limit;
    for (const rs of cleanable.slice(0, Math.max(0, diff))) {
      // Only an RS that is at 0 and whose controller has seen that (no pods left to manage).
      if ((rs.status?.replicas ?? 0) !== 0 || specReplicas(rs) !== 0 || (rs.metadata.generation ?? 1) > (rs.status?.observedGeneration ?? 0)) continue;
      try {
        await this.client.delete('replicasets', rs.metadata.namespace, rs.metadata.name ?? '', { preconditions: { uid: rs.metadata.uid ?? '' } });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /** calculateStatus: counts from the RSs' status, and the Available condition. */
  private calculateStatus(s: SyncState, view: ReplicaSetView): DeploymentStatus {
    const d = s.d;
    const all = view.all;
    const available = availableReplicaCount(all);
    const status: DeploymentStatus = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: actualReplicaCount(all),
      updatedReplicas: actualReplicaCount([view.newRS]),
      readyReplicas: readyReplicaCount(all),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, replicaCount(all) - available),
      conditions: structuredClone(d.status?.conditions ?? []),
    };
    if (available >= (d.spec.replicas ?? 1) - maxUnavailable(d)) {
      setCondition(status, newCondition('Available', 'True', REASONS.minimumReplicasAvailable, 'Deployment has minimum availability.', this.stamp()));
    } else {
      setCondition(status, newCondition('Available', 'False', REASONS.minimumReplicasUnavailable, 'Deployment does not have minimum availability.', this.stamp()));
    }
    return status;
  }

  private async syncDeploymentStatus(s: SyncState, view: ReplicaSetView): Promise<void> {
    const status = this.calculateStatus(s, view);
    if (stableJson(status) !== stableJson(s.d.status ?? {})) await this.writeStatus(s, status);
  }

  /** syncRolloutStatus: the status plus the Progressing condition of the rollout. */
  private async syncRolloutStatus(s: SyncState, view: ReplicaSetView): Promise<void> {
    const d = s.d;
    const status = this.calculateStatus(s, view);
    if (!hasProgressDeadline(d)) removeCondition(status, 'Progressing');
    const current = getCondition(d.status, 'Progressing');
    const newName = view.newRS?.metadata.name;
    const complete = status.replicas === status.updatedReplicas && current?.reason === REASONS.newRSAvailable;
    if (hasProgressDeadline(d) && !complete) {
      if (deploymentComplete(d, status)) {
        const msg = newName === undefined ? `Deployment "${d.metadata.name ?? ''}" has successfully progressed.` : `ReplicaSet "${newName}" has successfully progressed.`;
        setCondition(status, newCondition('Progressing', 'True', REASONS.newRSAvailable, msg, this.stamp()));
      } else if (deploymentProgressing(d, status)) {
        const msg = newName === undefined ? `Deployment "${d.metadata.name ?? ''}" is progressing.` : `ReplicaSet "${newName}" is progressing.`;
        const c = newCondition('Progressing', 'True', REASONS.replicaSetUpdated, msg, this.stamp());
        // Progress refreshes lastUpdateTime even with the same reason; the transition time stays.
        if (current?.status === 'True' && current.lastTransitionTime !== undefined) c.lastTransitionTime = current.lastTransitionTime;
        removeCondition(status, 'Progressing');
        setCondition(status, c);
      } else if (deploymentTimedOut(d, status, this.now())) {
        const msg = newName === undefined ? `Deployment "${d.metadata.name ?? ''}" has timed out progressing.` : `ReplicaSet "${newName}" has timed out progressing.`;
        setCondition(status, newCondition('Progressing', 'False', REASONS.timedOut, msg, this.stamp()));
      }
    }
    if (stableJson(status) === stableJson(d.status ?? {})) {
      this.requeueStuckDeployment(s, status);
      return;
    }
    await this.writeStatus(s, status);
  }

  /** requeueStuckDeployment: look again when the progress deadline would pass. */
  private requeueStuckDeployment(s: SyncState, status: DeploymentStatus): void {
    const c = getCondition(status, 'Progressing');
    if (!hasProgressDeadline(s.d) || c === undefined || c.reason === REASONS.newRSAvailable || c.reason === REASONS.timedOut) return;
    if (deploymentComplete(s.d, status)) return;
    const from = Date.parse(c.lastUpdateTime ?? '');
    if (Number.isNaN(from)) return;
    const after = from + (s.d.spec.progressDeadlineSeconds ?? 600) * 1000 - this.now();
    this.queue.addAfter(s.key, Math.max(1000, after + 1000));
  }
}

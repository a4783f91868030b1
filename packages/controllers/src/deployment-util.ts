// Pure helpers of the Deployment controller, as Kubernetes' pkg/controller/deployment/util:
// the pod-template hash, revisions and their annotations, maxSurge/maxUnavailable arithmetic,
// replica counts over ReplicaSets and the deployment conditions.
import type { Deployment, DeploymentCondition, DeploymentStatus, PodTemplateSpec, ReplicaSet } from '@flotilla/api';

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas';
/** Kubernetes caps the revision-history annotation at this many characters. */
const REVISION_HISTORY_LIMIT_CHARS = 2000;

/** Annotations a Deployment does not pass on to its ReplicaSets (annotationsToSkip). */
const SKIPPED_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  'deprecated.deployment.rollback.to',
]);

/** The reasons of the Progressing and Available conditions, spelled as Kubernetes does. */
export const REASONS = {
  newRSAvailable: 'NewReplicaSetAvailable',
  replicaSetUpdated: 'ReplicaSetUpdated',
  foundNewRS: 'FoundNewReplicaSet',
  newReplicaSetCreated: 'NewReplicaSetCreated',
  failedRSCreate: 'ReplicaSetCreateError',
  timedOut: 'ProgressDeadlineExceeded',
  paused: 'DeploymentPaused',
  resumed: 'DeploymentResumed',
  minimumReplicasAvailable: 'MinimumReplicasAvailable',
  minimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const;

// ---- the pod-template hash ----

/** JSON with object keys sorted, so equal templates print equally whatever their key order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The template without the pod-template-hash label: what "the same template" means. */
function withoutHash(t: PodTemplateSpec): PodTemplateSpec {
  const copy = structuredClone(t);
  if (copy.metadata?.labels !== undefined) {
    delete copy.metadata.labels[POD_TEMPLATE_HASH_LABEL];
    if (Object.keys(copy.metadata.labels).length === 0) delete copy.metadata.labels;
  }
  return copy;
}

/** EqualIgnoreHash: two templates are equal except for the pod-template-hash label. */
export function equalIgnoreHash(a: PodTemplateSpec, b: PodTemplateSpec): boolean {
  return stableJson(withoutHash(a)) === stableJson(withoutHash(b));
}

function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** rand.SafeEncodeString: no vowels (no words) and no look-alike characters. */
function safeEncode(s: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...s].map((ch) => alphabet[ch.charCodeAt(0) % alphabet.length]).join('');
}

/**
 * ComputeHash: FNV-32a of the template (printed stably, without the hash label), safely
 * encoded as Kubernetes does. `collisionCount` is mixed in to step past a name collision.
 */
export function computeHash(template: PodTemplateSpec, collisionCount?: number): string {
  let text = stableJson(withoutHash(template));
  if (collisionCount !== undefined) text += String(collisionCount);
  return safeEncode(String(fnv32a(text)));
}

// ---- revisions ----

export function revisionOf(obj: { metadata: { annotations?: Record<string, string> } }): number {
  const v = obj.metadata.annotations?.[REVISION_ANNOTATION];
  const n = v === undefined ? 0 : Number.parseInt(v, 10);
  return Number.isNaN(n) ? 0 : n;
}

export function maxRevision(rss: readonly ReplicaSet[]): number {
  return rss.reduce((m, rs) => Math.max(m, revisionOf(rs)), 0);
}

/**
 * SetNewReplicaSetAnnotations: copies the Deployment's annotations, raises the RS revision to
 * `newRevision` when it is lower (a reused RS — a rollback — keeps its old numbers in the
 * revision-history annotation), and on creation records desired/max replicas. Mutates `rs`
 * (a copy); returns whether anything changed.
 */
export function setNewReplicaSetAnnotations(d: Deployment, rs: ReplicaSet, newRevision: number, exists: boolean): boolean {
  const ann = (rs.metadata.annotations ??= {});
  let changed = false;
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) {
    if (SKIPPED_ANNOTATIONS.has(k) || ann[k] === v) continue;
    ann[k] = v;
    changed = true;
  }
  const oldText = ann[REVISION_ANNOTATION];
  const old = oldText === undefined ? 0 : Number.parseInt(oldText, 10);
  if (Number.isNaN(old)) return changed;
  if (old < newRevision) {
    ann[REVISION_ANNOTATION] = String(newRevision);
    changed = true;
    if (oldText !== undefined) {
      const history = (ann[REVISION_HISTORY_ANNOTATION] ?? '').split(',').filter((x) => x !== '');
      history.push(oldText);
      while (history.join(',').length > REVISION_HISTORY_LIMIT_CHARS && history.length > 1) history.shift();
      ann[REVISION_HISTORY_ANNOTATION] = history.join(',');
    }
  }
  if (!exists && setReplicasAnnotations(rs, d.spec.replicas ?? 1, (d.spec.replicas ?? 1) + maxSurge(d))) changed = true;
  return changed;
}

/** SetReplicasAnnotations: what the Deployment wanted when it last sized this RS (for proportional scaling). */
export function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const ann = (rs.metadata.annotations ??= {});
  if (ann[DESIRED_REPLICAS_ANNOTATION] === String(desired) && ann[MAX_REPLICAS_ANNOTATION] === String(max)) return false;
  ann[DESIRED_REPLICAS_ANNOTATION] = String(desired);
  ann[MAX_REPLICAS_ANNOTATION] = String(max);
  return true;
}

export function replicasAnnotationsNeedUpdate(rs: ReplicaSet, desired: number, max: number): boolean {
  const ann = rs.metadata.annotations ?? {};
  return ann[DESIRED_REPLICAS_ANNOTATION] !== String(desired) || ann[MAX_REPLICAS_ANNOTATION] !== String(max);
}

function intAnnotation(rs: ReplicaSet, key: string): number | undefined {
  const v = rs.metadata.annotations?.[key];
  if (v === undefined) return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isNaN(n) ? undefined : n;
}

export function desiredReplicasAnnotation(rs: ReplicaSet): number | undefined {
  return intAnnotation(rs, DESIRED_REPLICAS_ANNOTATION);
}

// ---- surge and unavailability ----

/**
 * GetScaledValueFromIntOrPercent: an int as is, a percentage of `total` rounded up (surge)
 * or down (unavailable).
 */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined) return 0;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (m === null) {
    const n = Number.parseInt(v, 10);
    if (Number.isNaN(n)) throw new Error(`invalid value for IntOrString: "${v}"`);
    return n;
  }
  const pct = Number(m[1]);
  return roundUp ? Math.ceil((pct * total) / 100) : Math.floor((pct * total) / 100);
}

export function isRollingUpdate(d: Deployment): boolean {
  return (d.spec.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
}

/**
 * ResolveFenceposts: maxSurge rounds up, maxUnavailable down (defaults 25%). Both zero
 * cannot make progress, so unavailable becomes 1 (what Kubernetes does when rounding, not
 * the user, produced the zeros; validation refuses explicit zeros).
 */
export function resolveFenceposts(d: Deployment): { surge: number; unavailable: number } {
  const ru = d.spec.strategy?.rollingUpdate;
  const desired = d.spec.replicas ?? 1;
  const surge = scaledValue(ru?.maxSurge ?? '25%', desired, true);
  let unavailable = scaledValue(ru?.maxUnavailable ?? '25%', desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0;
}

export function maxUnavailable(d: Deployment): number {
  const desired = d.spec.replicas ?? 1;
  if (!isRollingUpdate(d) || desired === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, desired);
}

// ---- counts over ReplicaSets ----

export const specReplicas = (rs: ReplicaSet): number => rs.spec.replicas ?? 1;

/** GetReplicaCountForReplicaSets: the sum of spec.replicas. */
export function replicaCount(rss: readonly (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs === undefined ? 0 : specReplicas(rs)), 0);
}

/** GetActualReplicaCountForReplicaSets: the sum of status.replicas. */
export function actualReplicaCount(rss: readonly (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.replicas ?? 0), 0);
}

export function readyReplicaCount(rss: readonly (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.readyReplicas ?? 0), 0);
}

export function availableReplicaCount(rss: readonly (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs?.status?.availableReplicas ?? 0), 0);
}

/**
 * Available pods an RS will still have once it reaches its spec: a scale-down the RS
 * controller has not yet reported removes not-ready pods first, so at most spec.replicas
 * of the reported available pods remain. Used to decide scale-downs, never for status.
 */
export function settledAvailableCount(rss: readonly (ReplicaSet | undefined)[]): number {
  return rss.reduce((n, rs) => n + (rs === undefined ? 0 : Math.min(rs.status?.availableReplicas ?? 0, specReplicas(rs))), 0);
}

export function filterActive(rss: readonly (ReplicaSet | undefined)[]): ReplicaSet[] {
  return rss.filter((rs): rs is ReplicaSet => rs !== undefined && specReplicas(rs) > 0);
}

function createdAt(rs: ReplicaSet): number {
  const t = Date.parse(rs.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? 0 : t;
}

/** ReplicaSetsByCreationTimestamp: oldest first, names break ties. */
export function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  return createdAt(a) - createdAt(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}

/** ReplicaSetsByRevision: lowest revision first, then oldest. */
export function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  return revisionOf(a) - revisionOf(b) || byCreation(a, b);
}

/** ReplicaSetsBySizeNewer / BySizeOlder: largest first; ties newer (scaling up) or older (down) first. */
export function bySize(newerFirst: boolean): (a: ReplicaSet, b: ReplicaSet) => number {
  return (a, b) => specReplicas(b) - specReplicas(a) || (newerFirst ? byCreation(b, a) : byCreation(a, b));
}

/** FindNewReplicaSet: the oldest RS whose template equals the Deployment's (ignoring the hash). */
export function findNewReplicaSet(d: Deployment, rss: readonly ReplicaSet[]): ReplicaSet | undefined {
  return [...rss].sort(byCreation).find((rs) => equalIgnoreHash(rs.spec.template, d.spec.template));
}

/** NewRSNewReplicas: how large the new RS may be now, bounded by replicas + maxSurge in total. */
export function newRSNewReplicas(d: Deployment, all: readonly ReplicaSet[], newRS: ReplicaSet): number {
  const desired = d.spec.replicas ?? 1;
  if (!isRollingUpdate(d)) return desired;
  const current = replicaCount(all);
  const maxTotal = desired + maxSurge(d);
  if (current >= maxTotal) return specReplicas(newRS);
  const up = Math.min(maxTotal - current, desired - specReplicas(newRS));
  return specReplicas(newRS) + up;
}

/** IsSaturated: the new RS has all the Deployment's replicas, and all are available. */
export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (rs === undefined) return false;
  const desired = d.spec.replicas ?? 1;
  return specReplicas(rs) === desired && desiredReplicasAnnotation(rs) === desired && (rs.status?.availableReplicas ?? 0) === desired;
}

/**
 * GetProportion: this RS's share of a scaling of `toAdd` replicas, from its size relative to
 * the Deployment's size when it was last scaled (the max-replicas annotation).
 */
export function proportion(rs: ReplicaSet, d: Deployment, toAdd: number, added: number): number {
  if (specReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

function replicaSetFraction(rs: ReplicaSet, d: Deployment): number {
  const desired = d.spec.replicas ?? 1;
  if (desired === 0) return -specReplicas(rs);
  const maxNow = desired + maxSurge(d);
  let before = intAnnotation(rs, MAX_REPLICAS_ANNOTATION) ?? 0;
  if (before === 0) {
    before = d.status?.replicas ?? 0;
    if (before === 0) return 0;
  }
  // Go's math.Round: half away from zero.
  const size = (specReplicas(rs) * maxNow) / before;
  return Math.sign(size) * Math.round(Math.abs(size)) - specReplicas(rs);
}

// ---- conditions ----

export function getCondition(status: DeploymentStatus | undefined, type: DeploymentCondition['type']): DeploymentCondition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function newCondition(type: DeploymentCondition['type'], status: DeploymentCondition['status'], reason: string, message: string, now: string): DeploymentCondition {
  return { type, status, lastUpdateTime: now, lastTransitionTime: now, reason, message };
}

/**
 * SetDeploymentCondition: replaces the condition of that type unless status and reason are
 * unchanged; keeps lastTransitionTime when only the reason changed.
 */
export function setCondition(status: DeploymentStatus, c: DeploymentCondition): void {
  const cur = getCondition(status, c.type);
  if (cur !== undefined && cur.status === c.status && cur.reason === c.reason) return;
  const next = { ...c };
  if (cur !== undefined && cur.status === c.status && cur.lastTransitionTime !== undefined) next.lastTransitionTime = cur.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== c.type), next];
}

export function removeCondition(status: DeploymentStatus, type: DeploymentCondition['type']): void {
  if (status.conditions === undefined) return;
  status.conditions = status.conditions.filter((c) => c.type !== type);
}

/** DeploymentComplete: every replica updated and available, and this generation observed. */
export function deploymentComplete(d: Deployment, s: DeploymentStatus): boolean {
  const desired = d.spec.replicas ?? 1;
  return s.updatedReplicas === desired && s.replicas === desired && s.availableReplicas === desired && (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1);
}

/** DeploymentProgressing: more updated, fewer old, more ready or more available than last time. */
export function deploymentProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) || newOld < oldOld || (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) || (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0);
}

export function hasProgressDeadline(d: Deployment): boolean {
  const p = d.spec.progressDeadlineSeconds;
  return p !== undefined && p !== 2147483647;
}

/** DeploymentTimedOut: no progress reported for progressDeadlineSeconds. */
export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, now: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = getCondition(s, 'Progressing');
  if (c === undefined || c.reason === REASONS.newRSAvailable) return false;
  if (c.reason === REASONS.timedOut) return true;
  const from = Date.parse(c.lastUpdateTime ?? '');
  if (Number.isNaN(from)) return false;
  return from + (d.spec.progressDeadlineSeconds ?? 600) * 1000 < now;
}

// ---- one sync's view of the ReplicaSets ----

/**
 * The ReplicaSets of one sync, always at their latest known version: every write replaces
 * the object here, so later steps of the same sync never write with a stale resourceVersion.
 */
export class ReplicaSetView {
  private readonly byUid = new Map<string, ReplicaSet>();
  newUid: string | undefined;

  constructor(rss: readonly ReplicaSet[], newRS: ReplicaSet | undefined) {
    for (const rs of rss) this.byUid.set(rs.metadata.uid ?? '', rs);
    this.newUid = newRS?.metadata.uid;
  }

  put(rs: ReplicaSet): void {
    this.byUid.set(rs.metadata.uid ?? '', rs);
  }

  setNew(rs: ReplicaSet): void {
    this.put(rs);
    this.newUid = rs.metadata.uid;
  }

  get newRS(): ReplicaSet | undefined {
    return this.newUid === undefined ? undefined : this.byUid.get(this.newUid);
  }

  get old(): ReplicaSet[] {
    return [...this.byUid.values()].filter((rs) => rs.metadata.uid !== this.newUid);
  }

  get all(): ReplicaSet[] {
    return [...this.byUid.values()];
  }
}

/** FindActiveOrLatest: the only active RS, or with none active the newest; undefined when several are active. */
export function findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: readonly ReplicaSet[]): ReplicaSet | undefined {
  if (newRS === undefined && oldRSs.length === 0) return undefined;
  const newestFirst = [...oldRSs].sort(byCreation).reverse();
  const active = filterActive([...newestFirst, newRS]);
  if (active.length === 0) return newRS ?? newestFirst[0];
  return active.length === 1 ? active[0] : undefined;
}

// The namespace controller, as Kubernetes' pkg/controller/namespace (namespace_controller.go,
// deletion/namespaced_resources_deleter.go): deleting a Namespace only marks it (a
// deletionTimestamp, phase Terminating) while its spec.finalizers hold `kubernetes`; the API
// refuses new content in it from then on. This controller deletes every namespaced object of
// every resource the API serves in it (normal deletions: a pod on a node gets its grace period
// and its agent finishes it; an object with finalizers waits for them), reports progress in
// the namespace's conditions, and once a fresh list finds nothing left, removes the
// `kubernetes` finalizer. The update that removes the last finalizer deletes the namespace.
import { RESOURCES, WorkQueue, type ApiClient, type Informer, type KubeObject, type Namespace, type ResourceInfo } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';
import { isNotFound } from './owner.ts';

/** The finalizer this controller owns (Kubernetes' FinalizerKubernetes). */
export const NAMESPACE_FINALIZER = 'kubernetes';

export interface NamespaceControllerOptions {
  /** Namespaces worked on at once (default 2). */
  readonly concurrency?: number;
  /** The longest wait between passes while content remains (default 5000 ms); deletions seen by the informers wake it sooner. */
  readonly recheckMs?: number;
  /** How long a deletion seen in a terminating namespace waits before the next pass, so a burst costs one (default 200 ms). */
  readonly wakeDelayMs?: number;
}

export interface NamespaceCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

/** A Namespace with the conditions Kubernetes' NamespaceStatus has (Flotilla's type names only the phase). */
type TerminatingNamespace = Namespace & { status?: { phase?: 'Active' | 'Terminating'; conditions?: NamespaceCondition[] } };

/** Owners before what they own, so that fewer replacements are attempted (and refused) on the way; events last. */
const ORDER: Record<string, number> = { deployments: 0, replicasets: 1, pods: 8, events: 9 };

/** The namespaced resources, in deletion order. */
export function namespacedResources(): ResourceInfo[] {
  return RESOURCES.filter((r) => r.namespaced).sort((a, b) => (ORDER[a.resource] ?? 5) - (ORDER[b.resource] ?? 5));
}

/** "pods." / "deployments.apps", as Kubernetes' messages name a group-resource. */
function groupResource(r: ResourceInfo): string {
  return `${r.resource}.${r.group}`;
}

export interface Content {
  /** Per resource, the objects still there after this pass. */
  readonly remaining: { resource: ResourceInfo; count: number }[];
  /** Finalizer → how many remaining objects it holds. */
  readonly finalizers: Map<string, number>;
  /** Per resource, why deleting (or listing) failed. */
  readonly failures: string[];
  /** The latest deletionTimestamp among remaining objects (a pod's grace period ends then), as ms. */
  latestDeadline: number;
}

export class NamespaceController implements Controller {
  readonly name = 'namespace';
  private readonly client: ApiClient;
  private readonly namespaces: Informer<TerminatingNamespace>;
  private readonly queue: WorkQueue;
  private readonly recheckMs: number;
  private readonly wakeDelayMs: number;
  private readonly resources = namespacedResources();
  private started = false;

  constructor(
    private readonly ctx: ControllerContext,
    options: NamespaceControllerOptions = {},
  ) {
    this.client = ctx.client;
    this.recheckMs = options.recheckMs ?? 5000;
    this.wakeDelayMs = options.wakeDelayMs ?? 200;
    this.queue = new WorkQueue((key) => this.sync(key), { concurrency: options.concurrency ?? 2, name: this.name, logger: ctx.logger });
    const changed = (ns: TerminatingNamespace): void => {
      if (this.started && ns.metadata.deletionTimestamp !== undefined) this.queue.add(ns.metadata.name ?? '');
    };
    this.namespaces = ctx.informers.informer<TerminatingNamespace>('namespaces').on({ add: changed, update: (_, ns) => changed(ns) });
    // Content going away in a terminating namespace: the next pass may be the last one.
    for (const r of this.resources) ctx.informers.informer<KubeObject>(r.resource).on({ delete: (obj) => this.contentDeleted(obj) });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const ns of this.namespaces.list()) if (ns.metadata.deletionTimestamp !== undefined) this.queue.add(ns.metadata.name ?? '');
  }

  stop(): void {
    this.started = false;
    this.queue.stop();
  }

  /** Resolves when no pass is queued or running (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private contentDeleted(obj: KubeObject): void {
    if (!this.started || obj.metadata.namespace === undefined) return;
    const ns = this.namespaces.get(undefined, obj.metadata.namespace);
    if (ns?.metadata.deletionTimestamp !== undefined) this.queue.addAfter(obj.metadata.namespace, this.wakeDelayMs);
  }

  /** One pass over a terminating namespace (Kubernetes' namespacedResourcesDeleter.Delete). */
  private async sync(name: string): Promise<void> {
    if (!this.started) return;
    const cached = this.namespaces.get(undefined, name);
    if (cached === undefined || cached.metadata.deletionTimestamp === undefined || !hasFinalizer(cached)) return;
    // The cache may lag: decide on the namespace as it is now.
    let ns: TerminatingNamespace;
    try {
      ns = await this.client.get<TerminatingNamespace>('namespaces', undefined, name);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (ns.metadata.deletionTimestamp === undefined || !hasFinalizer(ns)) return;
    const content = await this.deleteAllContent(name);
    ns = await this.writeConditions(ns, conditionsFor(content, this.ctx.now()));
    if (content.failures.length > 0) throw new Error(`namespace ${name}: ${content.failures.join('; ')}`);
    if (content.remaining.length > 0) {
      // Kubernetes waits half the longest remaining grace period (plus a second); deletions
      // the informers see wake it earlier.
      const estimate = Math.max(0, content.latestDeadline - this.ctx.now());
      this.queue.addAfter(name, Math.min(this.recheckMs, Math.max(1000, estimate / 2 + 1000)));
      return;
    }
    await this.finalize(ns);
  }

  /**
   * Deletes what is left in the namespace, resource by resource, and lists again what it
   * deleted: objects with finalizers or grace periods stay for a while.
   */
  private async deleteAllContent(namespace: string): Promise<Content> {
    const content: Content = { remaining: [], finalizers: new Map(), failures: [], latestDeadline: 0 };
    for (const r of this.resources) {
      let items: KubeObject[];
      try {
        items = (await this.client.list<KubeObject>(r.resource, namespace)).items;
        if (items.length === 0) continue;
        let deleted = false;
        const errors: string[] = [];
        for (const item of items) {
          if (item.metadata.deletionTimestamp !== undefined) continue;
          try {
            await this.client.delete(r.resource, namespace, item.metadata.name ?? '', { propagationPolicy: 'Background', preconditions: { uid: item.metadata.uid ?? '' } });
            deleted = true;
          } catch (err) {
            // Gone already: fine. Anything else (a 409 too: a namesake, or writes racing ours) is
            // a failure, retried with backoff: a refused write is never simply repeated.
            if (isNotFound(err)) continue;
            errors.push((err as Error).message);
          }
        }
        if (errors.length > 0) content.failures.push(`${groupResource(r)}: ${errors.length} could not be deleted (${errors[0]})`);
        if (deleted) items = (await this.client.list<KubeObject>(r.resource, namespace)).items;
      } catch (err) {
        content.failures.push(`${groupResource(r)}: ${(err as Error).message}`);
        continue;
      }
      if (items.length === 0) continue;
      content.remaining.push({ resource: r, count: items.length });
      for (const item of items) {
        for (const f of item.metadata.finalizers ?? []) content.finalizers.set(f, (content.finalizers.get(f) ?? 0) + 1);
        const deadline = Date.parse(item.metadata.deletionTimestamp ?? '');
        if (!Number.isNaN(deadline)) content.latestDeadline = Math.max(content.latestDeadline, deadline);
      }
    }
    return content;
  }

  /** Writes the conditions if any changed (status, reason or message); returns the namespace as stored. */
  private async writeConditions(ns: TerminatingNamespace, wanted: NamespaceCondition[]): Promise<TerminatingNamespace> {
    const current = ns.status?.conditions ?? [];
    let changed = false;
    const next: NamespaceCondition[] = current.filter((c) => !wanted.some((w) => w.type === c.type));
    for (const w of wanted) {
      const cur = current.find((c) => c.type === w.type);
      if (cur !== undefined && cur.status === w.status && cur.reason === w.reason && cur.message === w.message) {
        next.push(cur);
        continue;
      }
      changed = true;
      next.push(cur !== undefined && cur.status === w.status && cur.lastTransitionTime !== undefined ? { ...w, lastTransitionTime: cur.lastTransitionTime } : w);
    }
    if (!changed) return ns;
    return this.client.update<TerminatingNamespace>('namespaces', { ...ns, status: { ...ns.status, conditions: next } }, 'status');
  }

  /**
   * Removes the `kubernetes` finalizer (what PUT namespaces/NAME/finalize does; an update,
   * since the ApiClient has no finalize call and Flotilla's update lets spec.finalizers change).
   * With no other finalizer left, the API deletes the namespace.
   */
  private async finalize(ns: TerminatingNamespace): Promise<void> {
    const next = structuredClone(ns);
    next.spec = { ...next.spec, finalizers: (next.spec?.finalizers ?? []).filter((f) => f !== NAMESPACE_FINALIZER) };
    try {
      await this.client.update('namespaces', next);
      this.ctx.logger.info({ namespace: ns.metadata.name }, 'namespace emptied and finalized');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function hasFinalizer(ns: TerminatingNamespace): boolean {
  return (ns.spec?.finalizers ?? []).includes(NAMESPACE_FINALIZER);
}

/** The five deletion conditions Kubernetes' namespace controller keeps, with its reasons and messages. */
export function conditionsFor(c: Content, now: number): NamespaceCondition[] {
  const at = new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const cond = (type: string, status: 'True' | 'False', reason: string, message: string): NamespaceCondition => ({ type, status, lastTransitionTime: at, reason, message });
  const finalizers = [...c.finalizers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    cond('NamespaceDeletionDiscoveryFailure', 'False', 'ResourcesDiscovered', 'All resources successfully discovered'),
    cond('NamespaceDeletionGroupVersionParsingFailure', 'False', 'ParsedGroupVersions', 'All legacy kube types successfully parsed'),
    c.failures.length > 0
      ? cond('NamespaceDeletionContentFailure', 'True', 'ContentDeletionFailed', `Failed to delete all resource types, ${c.failures.length} remaining: ${c.failures.join(', ')}`)
      : cond('NamespaceDeletionContentFailure', 'False', 'ContentDeleted', 'All content successfully deleted, may be waiting on finalization'),
    c.remaining.length > 0
      ? cond('NamespaceContentRemaining', 'True', 'SomeResourcesRemain', `Some resources are remaining: ${c.remaining.map((r) => `${groupResource(r.resource)} has ${r.count} resource instances`).join(', ')}`)
      : cond('NamespaceContentRemaining', 'False', 'ContentRemoved', 'All content successfully removed'),
    finalizers.length > 0
      ? cond('NamespaceFinalizersRemaining', 'True', 'SomeFinalizersRemain', `Some content in the namespace has finalizers remaining: ${finalizers.map(([f, n]) => `${f} in ${n} resource instances`).join(', ')}`)
      : cond('NamespaceFinalizersRemaining', 'False', 'ContentHasNoFinalizers', 'All content-preserving finalizers finished'),
  ];
}

// An in-memory ApiClient double for the no-spin tests: reads and watches work on what it was
// seeded with; writes fail as the chosen mode says, and every write attempt is recorded with
// the (possibly fake) time it was made. Watch events are delivered by setTimeout(0), as a real
// watch delivers them on a later turn of the event loop, so under mocked timers they arrive
// only when the test moves time on.
import { ApiError, mergePatch, type ApiClient, type DeleteCallOptions, type KubeObject, type ListResult, type WatchCallbacks } from '@flotilla/api';

export type FailureMode =
  /** Every create, update, patch, delete and bind is refused with 500. */
  | 'error500'
  /** … with 409 Conflict. */
  | 'conflict'
  /**
   * What a namespace that is gone looks like from a controller: creates are refused (404 for
   * the namespace) and deletes fail (500), but updates and patches of what exists succeed, and
   * — as Flotilla's API does — store a new resourceVersion and send a watch event even when
   * nothing changed. This is issue 12's mix: a write that succeeds wakes the controller whose
   * next write fails.
   */
  | 'namespace-gone';

export interface Attempt {
  readonly at: number;
  readonly verb: 'create' | 'update' | 'patch' | 'delete' | 'bind';
  /** resource[/subresource] namespace/name (a create's generateName stands in for its name). */
  readonly target: string;
}

type Watcher = { readonly namespace: string | undefined; readonly callbacks: WatchCallbacks<KubeObject> };

export class FakeApi implements ApiClient {
  readonly attempts: Attempt[] = [];
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  private rv = 100;

  constructor(private readonly mode: FailureMode) {}

  /** Puts an object in place before the controllers start (no write attempt is recorded). */
  seed(resource: string, obj: KubeObject): void {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    stored.metadata.uid ??= `uid-${resource}-${obj.metadata.name ?? ''}`;
    this.bucket(resource).set(key(stored), stored);
  }

  async get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T> {
    const obj = this.bucket(resource).get(namespace === undefined ? name : `${namespace}/${name}`);
    if (obj === undefined) throw new ApiError('NotFound', `${resource} "${name}" not found`);
    return structuredClone(obj) as T;
  }

  async list<T extends KubeObject>(resource: string, namespace?: string, _options?: unknown): Promise<ListResult<T>> {
    const items = [...this.bucket(resource).values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace);
    return { items: structuredClone(items) as T[], resourceVersion: String(this.rv) };
  }

  async watch<T extends KubeObject>(resource: string, namespace: string | undefined, _rv: string, callbacks: WatchCallbacks<T>): Promise<() => void> {
    const w: Watcher = { namespace, callbacks: callbacks as unknown as WatchCallbacks<KubeObject> };
    let set = this.watchers.get(resource);
    if (set === undefined) this.watchers.set(resource, (set = new Set()));
    set.add(w);
    return () => set.delete(w);
  }

  async create<T extends KubeObject>(resource: string, obj: T): Promise<T> {
    this.record('create', resource, undefined, obj.metadata.namespace, obj.metadata.name ?? obj.metadata.generateName ?? '');
    if (this.mode === 'namespace-gone') throw new ApiError('NotFound', `namespaces "${obj.metadata.namespace ?? ''}" not found`);
    throw this.failure(resource, obj.metadata.name ?? '');
  }

  async update<T extends KubeObject>(resource: string, obj: T, subresource?: 'status'): Promise<T> {
    this.record('update', resource, subresource, obj.metadata.namespace, obj.metadata.name ?? '');
    if (this.mode !== 'namespace-gone') throw this.failure(resource, obj.metadata.name ?? '');
    const cur = this.bucket(resource).get(key(obj));
    if (cur === undefined) throw new ApiError('NotFound', `${resource} "${obj.metadata.name ?? ''}" not found`);
    if (obj.metadata.resourceVersion !== undefined && obj.metadata.resourceVersion !== cur.metadata.resourceVersion) throw new ApiError('Conflict', `the object has been modified`);
    return this.store(resource, subresource === 'status' ? { ...cur, status: (obj as { status?: unknown }).status } as KubeObject : obj) as T;
  }

  async patch<T extends KubeObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, _type?: 'merge' | 'strategic' | 'json', subresource?: 'status' | 'scale'): Promise<T> {
    this.record('patch', resource, subresource, namespace, name);
    if (this.mode !== 'namespace-gone') throw this.failure(resource, name);
    const cur = await this.get(resource, namespace, name);
    return this.store(resource, mergePatch(cur, patch) as KubeObject) as T;
  }

  async delete(resource: string, namespace: string | undefined, name: string, _options?: DeleteCallOptions): Promise<void> {
    this.record('delete', resource, undefined, namespace, name);
    throw this.mode === 'namespace-gone' ? new ApiError('InternalError', 'etcdserver: request timed out') : this.failure(resource, name);
  }

  async bind(namespace: string, name: string): Promise<void> {
    this.record('bind', 'pods', 'binding', namespace, name);
    throw this.failure('pods', name);
  }

  private failure(resource: string, name: string): ApiError {
    if (this.mode === 'conflict') return new ApiError('Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    return new ApiError('InternalError', 'Internal error occurred: the store is unavailable');
  }

  private record(verb: Attempt['verb'], resource: string, sub: string | undefined, namespace: string | undefined, name: string): void {
    this.attempts.push({ at: Date.now(), verb, target: `${resource}${sub === undefined ? '' : `/${sub}`} ${namespace === undefined ? '' : `${namespace}/`}${name}` });
  }

  /** Stores a new version (a new resourceVersion even if nothing changed) and tells the watchers. */
  private store(resource: string, obj: KubeObject): KubeObject {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rv);
    this.bucket(resource).set(key(stored), stored);
    for (const w of this.watchers.get(resource) ?? []) {
      if (w.namespace !== undefined && w.namespace !== stored.metadata.namespace) continue;
      const copy = structuredClone(stored);
      setTimeout(() => w.callbacks.event('MODIFIED', copy), 0);
    }
    return structuredClone(stored);
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (b === undefined) this.objects.set(resource, (b = new Map()));
    return b;
  }
}

function key(obj: KubeObject): string {
  return obj.metadata.namespace === undefined ? obj.metadata.name ?? '' : `${obj.metadata.namespace}/${obj.metadata.name ?? ''}`;
}

// An informer: a local cache of one resource kept current by list + watch, with handlers
// called on every add, update and delete, as client-go's shared informers. If its watch
// ends it watches again from the last resourceVersion it saw; if that is too old (410) it
// lists again and reports the difference as events, so handlers never miss a change.
// Cached objects are shared: handlers and readers must not modify them (copy first).
import { ApiError } from '../errors.ts';
import type { Logger } from '@flotilla/wire';
import type { KubeObject } from '../types/meta.ts';
import type { ApiClient, ListOptions } from './types.ts';

export interface InformerHandlers<T> {
  readonly add?: (obj: T) => void;
  readonly update?: (old: T, obj: T) => void;
  readonly delete?: (obj: T) => void;
}

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace === undefined ? obj.metadata.name ?? '' : `${obj.metadata.namespace}/${obj.metadata.name ?? ''}`;
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  /** The same objects by namespace (client-go's namespace index): loops read one namespace. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private stopWatch: (() => void) | undefined;
  private stopped = false;
  private synced = false;
  private resourceVersion = '';
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: ApiClient,
    readonly resource: string,
    private readonly options: { namespace?: string; list?: ListOptions; logger?: Logger } = {},
  ) {}

  on(handlers: InformerHandlers<T>): this {
    this.handlers.push(handlers);
    return this;
  }

  /** Lists, fills the cache (calling add for each object), then watches. */
  async start(): Promise<void> {
    await this.relist();
    this.synced = true;
  }

  /** False once stopped (by stop(), or because its client closed for good). */
  get running(): boolean {
    return !this.stopped;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace === undefined ? name : `${namespace}/${name}`);
  }

  getByKey(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  /** The cached objects of one namespace, without walking the others. */
  listIn(namespace: string | undefined): T[] {
    const ns = this.byNamespace.get(namespace ?? '');
    return ns === undefined ? [] : [...ns.values()];
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.stopWatch?.();
    this.stopWatch = undefined;
  }

  private async relist(): Promise<void> {
    const listed = await this.client.list<T>(this.resource, this.options.namespace, this.options.list);
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const obj of listed.items) {
      const key = objectKey(obj);
      seen.add(key);
      this.apply('MODIFIED', obj);
    }
    for (const [key, old] of [...this.cache]) if (!seen.has(key)) this.apply('DELETED', old);
    this.resourceVersion = listed.resourceVersion;
    await this.watch();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    let ended = false;
    const stop = await this.client.watch<T>(
      this.resource,
      this.options.namespace,
      this.resourceVersion,
      {
        event: (type, obj) => {
          if (this.stopped) return;
          if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.apply(type, obj);
          const rv = obj.metadata.resourceVersion;
          if (rv !== undefined && rv !== '') this.resourceVersion = rv;
        },
        end: (err) => {
          ended = true;
          this.stopWatch = undefined;
          if (this.stopped) return;
          this.restart(err !== undefined && err.reason === 'Expired');
        },
      },
      this.options.list,
    );
    // stop() may have run while the watch was opening: end it now, or it would outlive us.
    if (this.stopped) stop();
    else if (!ended) this.stopWatch = stop;
  }

  /** After a watch ended: watch again (or list again if its revision is gone), retrying on error. */
  private restart(relist: boolean, delayMs = 0): void {
    if (this.client.closed === true) {
      // Nothing will ever answer again (the master is shutting down): stop rather than retry.
      this.stop();
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      (relist ? this.relist() : this.watch()).catch((err: unknown) => {
        if (this.stopped) return;
        const expired = err instanceof ApiError && err.reason === 'Expired';
        this.options.logger?.warn({ resource: this.resource, err: (err as Error).message }, 'an informer could not watch; retrying');
        this.restart(relist || expired, Math.min(1000, Math.max(50, delayMs * 2)));
      });
    }, delayMs);
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (type === 'DELETED') {
      if (old === undefined) return;
      this.cache.delete(key);
      const ns = this.byNamespace.get(old.metadata.namespace ?? '');
      ns?.delete(key);
      if (ns?.size === 0) this.byNamespace.delete(old.metadata.namespace ?? '');
      for (const h of this.handlers) this.call(() => h.delete?.(obj));
      return;
    }
    if (old !== undefined && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.cache.set(key, obj);
    const namespace = obj.metadata.namespace ?? '';
    let ns = this.byNamespace.get(namespace);
    if (ns === undefined) this.byNamespace.set(namespace, (ns = new Map()));
    ns.set(key, obj);
    for (const h of this.handlers) this.call(() => (old === undefined ? h.add?.(obj) : h.update?.(old, obj)));
  }

  /** A handler that throws must not keep the others (or the cache) from seeing the change. */
  private call(handler: () => void): void {
    try {
      handler();
    } catch (err) {
      this.options.logger?.error({ resource: this.resource, err: (err as Error).message }, 'an informer handler failed');
    }
  }
}

/**
 * One informer per resource, shared by every loop of a master's control plane (as client-go's
 * SharedInformerFactory): ask for what you need before start(), then read the caches.
 */
export class InformerFactory {
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private started = false;

  constructor(
    private readonly client: ApiClient,
    private readonly logger?: Logger,
  ) {}

  /** The informer of `resource` across all namespaces (created on first request). */
  informer<T extends KubeObject>(resource: string): Informer<T> {
    let inf = this.informers.get(resource);
    if (inf === undefined) {
      if (this.started) throw new Error(`informer for ${resource} requested after start(); ask for it before`);
      inf = new Informer<KubeObject>(this.client, resource, this.logger === undefined ? {} : { logger: this.logger });
      this.informers.set(resource, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /** Lists and starts watching every informer asked for; resolves once all caches are filled. */
  async start(): Promise<void> {
    this.started = true;
    await Promise.all([...this.informers.values()].map((i) => i.start()));
  }

  stop(): void {
    for (const i of this.informers.values()) i.stop();
  }
}

// An ApiClient inside a master: each call runs through the API server's own request path
// (authorization, validation, admission, resourceVersion preconditions) without HTTP. The
// leader-only loops use it with a fence, so that what they write can only land while their
// master still leads in the term they started in (see writeFence).
import { ApiError } from '../errors.ts';
import type { ApiCall, ApiServer } from '../http/server.ts';
import { runWatch } from '../http/watch.ts';
import { writeFence } from '../objects.ts';
import { RESOURCES, type ResourceInfo } from '../resources.ts';
import type { User } from '../auth.ts';
import type { KubeList, KubeObject, WatchEventType } from '../types/meta.ts';
import type { ApiClient, DeleteCallOptions, ListOptions, ListResult, WatchCallbacks } from './types.ts';

export interface LocalClientOptions {
  /** The Raft term writes are fenced to; undefined: not fenced. Read at every call. */
  readonly fence?: () => number | undefined;
  /** Seconds between bookmarks on watches (default 15). */
  readonly bookmarkSeconds?: number;
}

export function resourceInfo(resource: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.resource === resource);
  if (r === undefined) throw new ApiError('NotFound', `the server does not serve resource "${resource}"`);
  return r;
}

/** The URL path of a resource, collection or subresource. */
export function resourcePath(resource: string, namespace: string | undefined, name?: string, subresource?: string): string {
  const r = resourceInfo(resource);
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  const ns = r.namespaced && namespace !== undefined ? `/namespaces/${namespace}` : '';
  return `${base}${ns}/${resource}${name === undefined ? '' : `/${name}`}${subresource === undefined ? '' : `/${subresource}`}`;
}

function query(options: ListOptions | undefined, extra: Record<string, string> = {}): URLSearchParams {
  const q = new URLSearchParams(extra);
  if (options?.labelSelector !== undefined && options.labelSelector !== '') q.set('labelSelector', options.labelSelector);
  if (options?.fieldSelector !== undefined && options.fieldSelector !== '') q.set('fieldSelector', options.fieldSelector);
  return q;
}

const PATCH_TYPES = { merge: 'application/merge-patch+json', strategic: 'application/strategic-merge-patch+json', json: 'application/json-patch+json' } as const;

export class LocalClient implements ApiClient {
  constructor(
    private readonly server: ApiServer,
    private readonly user: User,
    private readonly options: LocalClientOptions = {},
  ) {}

  get closed(): boolean {
    return this.server.closed;
  }

  private async call<T>(method: string, path: string, q: URLSearchParams, body?: unknown, contentType?: string): Promise<T> {
    const call: ApiCall = { method, path, query: q, accept: 'application/json', contentType, body: async () => body };
    const term = method === 'GET' ? undefined : this.options.fence?.();
    const run = (): Promise<T> => this.server.execute(this.user, call).then((r) => r.body as T);
    return term === undefined ? run() : writeFence.run(term, run);
  }

  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T> {
    return this.call('GET', resourcePath(resource, namespace, name), new URLSearchParams());
  }

  async list<T extends KubeObject>(resource: string, namespace?: string, options?: ListOptions): Promise<ListResult<T>> {
    const l = await this.call<KubeList<T>>('GET', resourcePath(resource, namespace), query(options));
    return { items: l.items, resourceVersion: l.metadata.resourceVersion ?? '' };
  }

  create<T extends KubeObject>(resource: string, obj: T): Promise<T> {
    return this.call('POST', resourcePath(resource, obj.metadata.namespace), new URLSearchParams(), obj);
  }

  update<T extends KubeObject>(resource: string, obj: T, subresource?: 'status'): Promise<T> {
    if (obj.metadata.name === undefined) return Promise.reject(new ApiError('BadRequest', 'an update needs metadata.name'));
    return this.call('PUT', resourcePath(resource, obj.metadata.namespace, obj.metadata.name, subresource), new URLSearchParams(), obj);
  }

  patch<T extends KubeObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, type: 'merge' | 'strategic' | 'json' = 'merge', subresource?: 'status' | 'scale'): Promise<T> {
    return this.call('PATCH', resourcePath(resource, namespace, name, subresource), new URLSearchParams(), patch, PATCH_TYPES[type]);
  }

  async delete(resource: string, namespace: string | undefined, name: string, options: DeleteCallOptions = {}): Promise<void> {
    await this.call('DELETE', resourcePath(resource, namespace, name), new URLSearchParams(), { kind: 'DeleteOptions', apiVersion: 'v1', ...options });
  }

  async bind(namespace: string, name: string, nodeName: string, uid?: string): Promise<void> {
    const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace, ...(uid === undefined ? {} : { uid }) }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } };
    await this.call('POST', resourcePath('pods', namespace, name, 'binding'), new URLSearchParams(), binding);
  }

  async watch<T extends KubeObject>(resource: string, namespace: string | undefined, resourceVersion: string, callbacks: WatchCallbacks<T>, options?: ListOptions): Promise<() => void> {
    const q = query(options, { watch: 'true', resourceVersion, allowWatchBookmarks: 'true' });
    const call: ApiCall = { method: 'GET', path: resourcePath(resource, namespace), query: q, accept: 'application/json', contentType: undefined, body: async () => undefined };
    const target = this.server.watchOf(this.user, call);
    if (target === undefined) throw new ApiError('BadRequest', `${resource} cannot be watched`);
    let failure: ApiError | undefined;
    let ended = false;
    return runWatch(this.server.objects, target.r, target.namespace, q, this.options.bookmarkSeconds ?? 15, {
      write: (type: WatchEventType, object: unknown) => {
        if (type === 'ERROR') {
          const s = object as { reason?: string; message?: string };
          failure = new ApiError(s.reason === 'Expired' || s.reason === 'Gone' ? 'Expired' : 'InternalError', s.message ?? 'the watch failed');
          return true;
        }
        callbacks.event(type, object as T);
        return true;
      },
      end: () => {
        if (ended) return;
        ended = true;
        // Called from inside runWatch's stop(): report on the next turn, after it returns.
        queueMicrotask(() => callbacks.end(failure));
      },
    });
  }
}

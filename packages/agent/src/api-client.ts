// The API as the agent sees it: the same ApiClient interface the masters' loops use (so the
// agent reuses the Informer), carried over the agent's one WebSocket to a master
// (AgentClient). Non-2xx answers become ApiError with the master's reason; a connection lost
// mid-call becomes a ServiceUnavailable ApiError, which callers retry.
import { AgentClient, ApiError, REASONS, resourcePath, type ApiClient, type ClientListOptions, type DeleteCallOptions, type KubeList, type KubeObject, type Reason, type Status, type WatchCallbacks } from '@flotilla/api';

/** Objects per page when the agent lists (client-go's informers use 500). */
const LIST_PAGE = 500;

const PATCH_TYPES = { merge: 'application/merge-patch+json', strategic: 'application/strategic-merge-patch+json', json: 'application/json-patch+json' } as const;

/** The ApiError a master's Status stands for (unknown reasons by their code). */
export function statusError(code: number, status: Status | undefined, fallback: string): ApiError {
  const given = status?.reason as Reason | undefined;
  const reason: Reason = given !== undefined && given in REASONS ? given : ((Object.entries(REASONS).find(([, c]) => c === code)?.[0] as Reason | undefined) ?? 'InternalError');
  return new ApiError(reason, status?.message ?? fallback, status?.details);
}

export class AgentApiClient implements ApiClient {
  constructor(private readonly client: AgentClient) {}

  private async call<T>(method: string, path: string, options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {}): Promise<T> {
    let r;
    try {
      r = await this.client.request<T>(method, path, options);
    } catch (err) {
      throw new ApiError('ServiceUnavailable', (err as Error).message);
    }
    if (r.code >= 200 && r.code < 300) return r.body;
    throw statusError(r.code, r.body as unknown as Status, `${method} ${path}: HTTP ${r.code}`);
  }

  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T> {
    return this.call('GET', resourcePath(resource, namespace, name));
  }

  async list<T extends KubeObject>(resource: string, namespace?: string, options?: ClientListOptions): Promise<{ items: T[]; resourceVersion: string }> {
    // Paged, as client-go's informers list: one answer is one frame, and a cluster's
    // Services or Endpoints can outgrow a frame. Every page is read at the first one's
    // revision (the continue token carries it); an expired token lists again from the start.
    for (;;) {
      const items: T[] = [];
      let token: string | undefined;
      let resourceVersion = '';
      try {
        do {
          const l: KubeList<T> = await this.call<KubeList<T>>('GET', resourcePath(resource, namespace), { query: { ...selectors(options), limit: String(LIST_PAGE), ...(token === undefined ? {} : { continue: token }) } });
          for (const item of l.items) items.push(item);
          resourceVersion = l.metadata.resourceVersion ?? '';
          token = l.metadata.continue === undefined || l.metadata.continue === '' ? undefined : l.metadata.continue;
        } while (token !== undefined);
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'Expired' && token !== undefined) continue;
        throw err;
      }
      return { items, resourceVersion };
    }
  }

  create<T extends KubeObject>(resource: string, obj: T): Promise<T> {
    return this.call('POST', resourcePath(resource, obj.metadata.namespace), { body: obj });
  }

  update<T extends KubeObject>(resource: string, obj: T, subresource?: 'status'): Promise<T> {
    return this.call('PUT', resourcePath(resource, obj.metadata.namespace, obj.metadata.name ?? '', subresource), { body: obj });
  }

  patch<T extends KubeObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, type: 'merge' | 'strategic' | 'json' = 'merge', subresource?: 'status' | 'scale'): Promise<T> {
    return this.call('PATCH', resourcePath(resource, namespace, name, subresource), { body: patch, contentType: PATCH_TYPES[type] });
  }

  async delete(resource: string, namespace: string | undefined, name: string, options: DeleteCallOptions = {}): Promise<void> {
    await this.call('DELETE', resourcePath(resource, namespace, name), { body: { kind: 'DeleteOptions', apiVersion: 'v1', ...options } });
  }

  bind(): Promise<void> {
    return Promise.reject(new ApiError('Forbidden', 'agents do not bind pods; the scheduler does'));
  }

  async watch<T extends KubeObject>(resource: string, namespace: string | undefined, resourceVersion: string, callbacks: WatchCallbacks<T>, options?: ClientListOptions): Promise<() => void> {
    let failure: ApiError | undefined;
    try {
      return await this.client.watch(resourcePath(resource, namespace), { ...selectors(options), resourceVersion, allowWatchBookmarks: 'true' }, {
        event: (type, object) => {
          if (type === 'ERROR') {
            const s = object as Status;
            failure = statusError(s.code ?? 500, s, 'the watch failed');
            return;
          }
          callbacks.event(type, object as T);
        },
        end: () => callbacks.end(failure),
      });
    } catch (err) {
      throw new ApiError('ServiceUnavailable', (err as Error).message);
    }
  }
}

function selectors(options: ClientListOptions | undefined): Record<string, string> {
  const q: Record<string, string> = {};
  if (options?.labelSelector !== undefined && options.labelSelector !== '') q['labelSelector'] = options.labelSelector;
  if (options?.fieldSelector !== undefined && options.fieldSelector !== '') q['fieldSelector'] = options.fieldSelector;
  return q;
}

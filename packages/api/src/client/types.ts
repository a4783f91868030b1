// The API as the leader-only loops (scheduler, controllers) and tests see it: typed calls by
// resource name ("pods", "deployments", …) that throw ApiError, and watches. LocalClient is
// the one implementation the masters use; tests use it too, on a real store.
import type { ApiError } from '../errors.ts';
import type { KubeObject, WatchEventType } from '../types/meta.ts';

export interface ListResult<T> {
  readonly items: T[];
  /** The revision the list was read at: watch from here. */
  readonly resourceVersion: string;
}

export interface ListOptions {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

export interface DeleteCallOptions {
  readonly propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  readonly gracePeriodSeconds?: number;
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

export interface WatchCallbacks<T> {
  /** One change, in resourceVersion order. BOOKMARKs carry only a resourceVersion. */
  readonly event: (type: WatchEventType, object: T) => void;
  /** The watch is over: `err` is set when the caller must list again (410 Expired). */
  readonly end: (err?: ApiError) => void;
}

export interface ApiClient {
  /** True once the client can never answer again (its server shut down): informers give up. */
  readonly closed?: boolean;
  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T>;
  list<T extends KubeObject>(resource: string, namespace?: string, options?: ListOptions): Promise<ListResult<T>>;
  /** Creates `obj` in `obj.metadata.namespace` (for namespaced resources). */
  create<T extends KubeObject>(resource: string, obj: T): Promise<T>;
  /** Replaces `obj` (or its status), with its resourceVersion as the precondition. */
  update<T extends KubeObject>(resource: string, obj: T, subresource?: 'status'): Promise<T>;
  patch<T extends KubeObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, type?: 'merge' | 'strategic' | 'json', subresource?: 'status' | 'scale'): Promise<T>;
  delete(resource: string, namespace: string | undefined, name: string, options?: DeleteCallOptions): Promise<void>;
  /** POST pods/NAME/binding: assigns a pod to a node (once). */
  bind(namespace: string, name: string, nodeName: string, uid?: string): Promise<void>;
  /** Watches changes after `resourceVersion`; returns stop(). Throws ApiError if it cannot start. */
  watch<T extends KubeObject>(resource: string, namespace: string | undefined, resourceVersion: string, callbacks: WatchCallbacks<T>, options?: ListOptions): Promise<() => void>;
}

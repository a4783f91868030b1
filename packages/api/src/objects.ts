// Kubernetes objects on top of the replicated key-value store: one key per object
// (`/registry/<resource>/<namespace>/<name>`), JSON values, and the store revision of the
// object's last change as its resourceVersion. Creates, updates and deletes are
// transactions, so a stale resourceVersion is a 409 and nothing changes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { KvError, isKvError, type KeyValue, type RevisionEvents, type StoreNode, type TxnResponse, type WatchEvent as KvEvent } from '@flotilla/store';
import { pace } from '@flotilla/wire';
import { ApiError, conflict, notFound } from './errors.ts';
import { matches, matchesFields, type FieldRequirement, type Selector } from './labels.ts';
import { fieldsOf, storeKey, type ResourceInfo } from './resources.ts';
import type { KubeList, KubeObject, WatchEventType } from './types/meta.ts';
import { apiVersionOf } from './resources.ts';

/**
 * The Raft term that writes made in this async context are fenced to (see StoreNode.write):
 * the leader-only loops run their API calls inside `writeFence.run(term, …)`, so nothing they
 * write can land after that leadership ended.
 */
export const writeFence = new AsyncLocalStorage<number>();

/** Objects read from the store per step of a list. */
const SCAN_CHUNK = 1000;
/** The most items one page of a list holds, whatever its limit (with a continue token for the rest). */
export const MAX_PAGE = 5000;
/**
 * … and at most about this many bytes (one more object passes it, and objects are at most
 * 1.5 MiB): a page always fits one 16 MiB frame of the agent socket, and encoding it for one
 * (a single step of the event loop) stays near 50 ms; 8 MiB pages passed 100.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeObject(obj: KubeObject): Uint8Array {
  const { resourceVersion: _, ...meta } = obj.metadata;
  return encoder.encode(JSON.stringify({ ...obj, metadata: meta }));
}

export function decodeObject(kv: KeyValue, revision = kv.modRevision): KubeObject {
  const obj = JSON.parse(decoder.decode(kv.value)) as KubeObject;
  obj.metadata.resourceVersion = String(revision);
  return obj;
}

/** The most bytes of items a list may hold, and the sentence that refuses one that holds more. */
export interface ListBound {
  readonly bytes: number;
  readonly why: string;
}

export interface ListOptions {
  readonly labels: Selector;
  readonly fields: readonly FieldRequirement[];
  readonly limit: number;
  readonly continueToken: string | undefined;
  /** "" (the latest, linearizable), "0" (any, from this master), or a revision to read at least. */
  readonly resourceVersion: string | undefined;
  readonly resourceVersionMatch: 'NotOlderThan' | 'Exact' | undefined;
}

interface ContinueToken {
  readonly rev: number;
  readonly start: string;
}

export interface ObjectWatch {
  cancel(): void;
  /** Every event of this watch up to this revision has been handed to its sink. */
  deliveredRevision(): number;
}

/** Store events a watch may have waiting to be turned into objects before it is ended as too slow. */
export const MAX_QUEUED_WATCH_BYTES = 32 * 1024 * 1024;

export interface ObjectWatchSink {
  /** One change, already filtered and translated (a change leaving the selection is DELETED). */
  readonly event: (type: WatchEventType, obj: KubeObject, revision: number) => boolean;
  /** The store has applied `revision` (for bookmarks). */
  readonly progress: (revision: number) => void;
  readonly end: (err?: ApiError) => void;
}

function storeError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isKvError(err)) {
    switch (err.code) {
      case 'compacted':
        return new ApiError('Expired', `too old resource version: ${err.message}`);
      case 'timeout':
      case 'unavailable':
      case 'not-leader':
        return new ApiError('ServiceUnavailable', `the cluster could not complete the request in time (${err.message}); retry`, { retryAfterSeconds: 1 });
      case 'too-large':
        return new ApiError('RequestEntityTooLarge', err.message);
      case 'fenced':
        // Not a Conflict: nothing should re-read and retry it; the loop that made it is ending.
        return new ApiError('ServiceUnavailable', `this master no longer leads in the term the request was made for (${err.message})`);
      case 'corrupt':
        return new ApiError('ServiceUnavailable', `this master does not serve: its data is damaged (${err.message}); use another master`, { retryAfterSeconds: 1 });
      case 'no-space':
        // What kube-apiserver answers when etcd says "mvcc: database space exceeded".
        return new ApiError('InternalError', err.message);
      case 'future-revision':
        return new ApiError('Timeout', `too large resource version: ${err.message}`, { retryAfterSeconds: 1 });
      default:
        return new ApiError('InternalError', err.message);
    }
  }
  return new ApiError('InternalError', (err as Error).message ?? String(err));
}

export class ObjectStore {
  constructor(private readonly node: StoreNode) {}

  /** The revision this master has applied. */
  get revision(): number {
    return this.node.revision;
  }

  async get(r: ResourceInfo, namespace: string | undefined, name: string, serializable = false): Promise<KubeObject> {
    try {
      const res = await this.node.range({ key: storeKey(r, namespace, name) }, { serializable });
      const kv = res.kvs[0];
      if (kv === undefined) throw notFound(r.resource, name, r.group);
      return decodeObject(kv);
    } catch (err) {
      throw storeError(err);
    }
  }

  /**
   * A whole list (or page). With `bound`, one whose items pass `bound.bytes` is refused (413,
   * saying `bound.why`) as soon as they do, before the rest is read.
   */
  async list(r: ResourceInfo, namespace: string | undefined, o: ListOptions, bound?: ListBound): Promise<KubeList> {
    const items: KubeObject[] = [];
    const scan = this.scan(r, namespace, o, undefined, bound);
    for (;;) {
      const step = await scan.next();
      if (step.done === true) return { apiVersion: apiVersionOf(r), kind: `${r.kind}List`, metadata: step.value, items };
      for (const item of step.value) items.push(item);
    }
  }

  /**
   * The same list as list(), a chunk of matching objects at a time (at most SCAN_CHUNK read
   * from the store per step, all at one revision), returning the list's metadata at the end:
   * a caller that writes each chunk out before asking for the next holds one chunk, not the
   * list. `onRevision` hears the revision as soon as the first read fixed it.
   */
  async *scan(r: ResourceInfo, namespace: string | undefined, o: ListOptions, onRevision?: (revision: number) => void, bound?: ListBound): AsyncGenerator<KubeObject[], KubeList['metadata'], void> {
    try {
      const prefix = storeKey(r, namespace);
      let at: number | undefined;
      let start = prefix;
      if (o.continueToken !== undefined && o.continueToken !== '') {
        const token = parseContinue(o.continueToken, prefix);
        at = token.rev;
        start = token.start;
      } else if (o.resourceVersionMatch === 'Exact' && o.resourceVersion !== undefined) {
        at = Number(o.resourceVersion);
      }
      const serializable = at !== undefined || o.resourceVersion === '0' || (o.resourceVersion !== undefined && o.resourceVersion !== '' && Number(o.resourceVersion) <= this.node.revision);
      const end = prefixEndOf(prefix);
      // A page holds at most MAX_PAGE items and MAX_PAGE_BYTES whatever the limit asked (the
      // API lets a server return fewer, with a continue token): a limit of a billion is not an
      // unpaged list, and no page outgrows a frame.
      const limit = o.limit > 0 ? Math.min(o.limit, MAX_PAGE) : Number.POSITIVE_INFINITY;
      let count = 0;
      let bytes = 0;
      let next: string | undefined;
      let revision = at;
      // Read in chunks until the page holds `limit` matching items or the range ends.
      for (;;) {
        const chunk = Math.min(Math.max(limit === Number.POSITIVE_INFINITY ? SCAN_CHUNK : (limit - count) * 2, 64), SCAN_CHUNK);
        const res = await this.node.range({ key: start, end, limit: chunk, ...(revision === undefined ? {} : { revision }) }, { serializable: serializable || revision !== undefined });
        if (revision === undefined) {
          revision = res.revision;
          onRevision?.(revision);
        }
        let items: KubeObject[] = [];
        for (const kv of res.kvs) {
          if (count >= limit) {
            next = kv.key;
            break;
          }
          if (limit !== Number.POSITIVE_INFINITY && bytes >= MAX_PAGE_BYTES) {
            next = kv.key;
            break;
          }
          // Decoding (a dozen objects of 1.4 MB were 300 ms of it) and what the caller does
          // with the chunk share the loop's turns with every other list (see pace.ts).
          const wait = pace();
          if (wait !== undefined) {
            if (items.length > 0) yield items;
            items = [];
            await wait;
          }
          const obj = decodeObject(kv);
          if (matches(o.labels, obj.metadata.labels) && matchesFields(o.fields, fieldsOf(r, obj))) {
            items.push(obj);
            count++;
            bytes += kv.value.byteLength;
            if (bound !== undefined && bytes > bound.bytes) throw new ApiError('RequestEntityTooLarge', bound.why);
          }
        }
        if (items.length > 0) yield items;
        if (next !== undefined || !res.more) break;
        start = `${res.kvs[res.kvs.length - 1]!.key}\0`;
      }
      return { resourceVersion: String(revision), ...(next === undefined ? {} : { continue: makeContinue({ rev: revision, start: next }) }) };
    } catch (err) {
      if (isKvError(err, 'compacted') && (o.continueToken !== undefined || o.limit === 0)) {
        throw new ApiError('Expired', 'The provided continue parameter is too old to display a consistent list result, or the list was read more slowly than the store keeps history. You can start a new list without the continue parameter.');
      }
      throw storeError(err);
    }
  }

  /** Creates `obj` unless its key exists (409 AlreadyExists). Returns it with its resourceVersion. */
  async create(r: ResourceInfo, obj: KubeObject): Promise<KubeObject> {
    const key = storeKey(r, obj.metadata.namespace, obj.metadata.name);
    let res: TxnResponse;
    try {
      res = (await this.node.write({
        type: 'txn',
        compare: [{ key, target: 'version', result: 'equal', value: 0 }],
        success: [{ op: 'put', key, value: encodeObject(obj) }],
        failure: [],
      }, undefined, undefined, writeFence.getStore())) as TxnResponse;
    } catch (err) {
      throw storeError(err);
    }
    if (!res.succeeded) {
      throw new ApiError('AlreadyExists', `${r.resource}${r.group === '' ? '' : `.${r.group}`} "${obj.metadata.name}" already exists`, { name: obj.metadata.name!, kind: r.resource, ...(r.group === '' ? {} : { group: r.group }) });
    }
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(res.revision) } };
  }

  /**
   * Replaces the object stored at revision `expected` (the resourceVersion the caller read);
   * 409 Conflict if it changed since, 404 if it is gone.
   */
  async update(r: ResourceInfo, obj: KubeObject, expected: number): Promise<KubeObject> {
    const key = storeKey(r, obj.metadata.namespace, obj.metadata.name);
    const res = await this.guarded(key, expected, { op: 'put', key, value: encodeObject(obj) });
    if (res === 'missing') throw notFound(r.resource, obj.metadata.name!, r.group);
    if (res === 'conflict') throw conflict(r.resource, obj.metadata.name!, r.group);
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(res) } };
  }

  /** Deletes the object if it is still at revision `expected`. Returns the deletion revision. */
  async delete(r: ResourceInfo, namespace: string | undefined, name: string, expected: number): Promise<number> {
    const key = storeKey(r, namespace, name);
    const res = await this.guarded(key, expected, { op: 'deleteRange', key });
    if (res === 'missing') throw notFound(r.resource, name, r.group);
    if (res === 'conflict') throw conflict(r.resource, name, r.group);
    return res;
  }

  private async guarded(key: string, expected: number, op: { op: 'put'; key: string; value: Uint8Array } | { op: 'deleteRange'; key: string }): Promise<number | 'missing' | 'conflict'> {
    let res: TxnResponse;
    try {
      res = (await this.node.write({
        type: 'txn',
        compare: [{ key, target: 'modRevision', result: 'equal', value: expected }],
        success: [op],
        failure: [{ op: 'range', key, countOnly: true }],
      }, undefined, undefined, writeFence.getStore())) as TxnResponse;
    } catch (err) {
      throw storeError(err);
    }
    if (res.succeeded) return res.revision;
    const found = res.responses[0];
    return found?.op === 'range' && found.count === 0 ? 'missing' : 'conflict';
  }

  /**
   * Watches a collection from after `afterRevision` (so from `afterRevision + 1`), delivering
   * Kubernetes watch events. Throws ApiError Expired (410) when that history is compacted.
   */
  watch(r: ResourceInfo, namespace: string | undefined, labels: Selector, fields: readonly FieldRequirement[], afterRevision: number, sink: ObjectWatchSink): ObjectWatch {
    const prefix = storeKey(r, namespace);
    const everything = labels.length === 0 && fields.length === 0;
    const selected = (obj: KubeObject | undefined): boolean => obj !== undefined && matches(labels, obj.metadata.labels) && matchesFields(fields, fieldsOf(r, obj));
    // The store hands over its events as it applies them (in the Raft loop's turn); they are
    // turned into objects and given to the sink here, a batch at a time, sharing the loop's
    // turns with all other bulk work (pace.ts): tens of watchers each decoding and writing a
    // 3 MB object were 430 ms of one turn.
    const queue: RevisionEvents[] = [];
    let queuedBytes = 0;
    let draining = false;
    let over = false;
    let delivered = afterRevision;
    let w: { cancel(): void } | undefined;
    const finish = (err: ApiError): void => {
      if (over) return;
      over = true;
      queue.length = 0;
      w?.cancel();
      sink.end(err);
    };
    const drain = async (): Promise<void> => {
      try {
        while (queue.length > 0 && !over) {
          const wait = pace();
          if (wait !== undefined) await wait;
          const batch = queue.shift();
          if (batch === undefined || over) return;
          queuedBytes -= eventBytes(batch);
          for (const e of batch.events) {
            if (!this.translate(e, batch.revision, everything, selected, sink)) {
              // The sink cannot take more: ended as the store ends a watcher that fell behind.
              finish(storeError(new KvError('slow-consumer', `the watcher fell behind at revision ${batch.revision}; watch again from there`)));
              return;
            }
          }
          delivered = batch.revision;
          sink.progress(batch.revision);
        }
      } catch (err) {
        // A sink that threw (or an object that would not decode) ends the watch, as the
        // store ends one whose deliver threw; nothing is skipped silently.
        finish(new ApiError('ServiceUnavailable', `the watch ended: ${(err as Error).message}`));
      } finally {
        draining = false;
      }
    };
    try {
      w = this.node.watch(
        { key: prefix, prefix: true, startRevision: afterRevision + 1, prevKv: true },
        {
          deliver: (batch) => {
            if (over) return true;
            queuedBytes += eventBytes(batch);
            // One that falls this far behind is ended (slow-consumer), as the store would.
            if (queuedBytes > MAX_QUEUED_WATCH_BYTES) return false;
            queue.push(batch);
            // Started after this call returns (the store may deliver history from inside
            // watch(), before it has returned what cancels it).
            if (!draining) {
              draining = true;
              void Promise.resolve().then(drain);
            }
            return true;
          },
          end: (err) => {
            if (over) return;
            over = true;
            queue.length = 0;
            sink.end(err === undefined ? undefined : storeError(err));
          },
        },
      );
      return {
        cancel: () => {
          over = true;
          queue.length = 0;
          w?.cancel();
        },
        // Nothing waiting (and not ended): every event up to the store's revision has been handed over.
        deliveredRevision: () => (!over && queue.length === 0 && !draining ? Math.max(delivered, this.node.revision) : delivered),
      };
    } catch (err) {
      throw storeError(err);
    }
  }

  private translate(e: KvEvent, revision: number, everything: boolean, selected: (o: KubeObject | undefined) => boolean, sink: ObjectWatchSink): boolean {
    // Without a selector the previous version is needed only for a deletion (what is sent).
    const before = e.prevKv === undefined || (everything && e.type !== 'delete') ? undefined : decodeObject(e.prevKv);
    if (e.type === 'delete') {
      if (!selected(before)) return true;
      before!.metadata.resourceVersion = String(revision);
      return sink.event('DELETED', before!, revision);
    }
    const after = decodeObject(e.kv);
    if (everything) return sink.event(e.prevKv === undefined ? 'ADDED' : 'MODIFIED', after, revision);
    const was = selected(before);
    const is = selected(after);
    if (is) return sink.event(was ? 'MODIFIED' : 'ADDED', after, revision);
    // The object left the selection: for this watcher it is gone.
    if (was) return sink.event('DELETED', { ...after }, revision);
    return true;
  }
}

/** The bytes of the values a batch of store events holds. */
function eventBytes(batch: RevisionEvents): number {
  let n = 0;
  for (const e of batch.events) n += (e.kv?.value.byteLength ?? 0) + (e.prevKv?.value.byteLength ?? 0);
  return n;
}

function prefixEndOf(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function makeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function parseContinue(token: string, prefix: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as ContinueToken;
    if (Number.isSafeInteger(t.rev) && t.rev > 0 && typeof t.start === 'string' && t.start.startsWith(prefix)) return t;
  } catch {
    // fall through
  }
  throw new ApiError('BadRequest', 'the continue token is not valid for this list; start the list again without it');
}

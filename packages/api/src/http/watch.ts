// Watch: a chunked HTTP response of JSON lines {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
// "object": …}. Without a resourceVersion (or with "0", or with sendInitialEvents) the watch
// starts with an ADDED event per existing object; with one it replays every change after it.
// A watch from a compacted revision gets an ERROR event carrying a 410 Expired Status.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../errors.ts';
import type { ObjectStore, ObjectWatch } from '../objects.ts';
import { apiVersionOf, type ResourceInfo } from '../resources.ts';
import type { KubeObject, WatchEventType } from '../types/meta.ts';
import { listOptions } from './handlers.ts';

/** A watcher that lets this much output pile up unsent is cut off (it then re-watches). */
const MAX_BUFFERED = 16 * 1024 * 1024;

export async function serveWatch(req: IncomingMessage, res: ServerResponse, objects: ObjectStore, r: ResourceInfo, namespace: string | undefined, q: URLSearchParams, bookmarkSeconds: number): Promise<void> {
  const opts = listOptions(q, r);
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  const initial = q.get('sendInitialEvents') === 'true';
  const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 0);
  const rv = opts.resourceVersion;
  if (rv !== undefined && rv !== '' && rv !== '0' && Number(rv) > objects.revision) {
    // Catch up with the cluster first (a linearizable read), then decide.
    await objects.list(r, namespace, { ...opts, limit: 1, resourceVersion: undefined, continueToken: undefined, resourceVersionMatch: undefined });
    if (Number(rv) > objects.revision) throw new ApiError('Timeout', `Too large resource version: ${rv}, current: ${objects.revision}`, { retryAfterSeconds: 1 });
  }

  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  let closed = false;
  let watch: ObjectWatch | undefined;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    if (closed) return;
    closed = true;
    watch?.cancel();
    for (const t of timers) clearInterval(t);
    res.end();
  };
  const write = (type: WatchEventType, object: unknown): boolean => {
    if (closed) return false;
    res.write(`${JSON.stringify({ type, object })}\n`);
    if (res.writableLength > MAX_BUFFERED) {
      finish();
      return false;
    }
    return true;
  };
  const bookmark = (annotations?: Record<string, string>): void => {
    write('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(objects.revision), ...(annotations === undefined ? {} : { annotations }) } });
  };
  req.on('close', finish);
  res.on('close', finish);

  let after: number;
  if (rv === undefined || rv === '' || rv === '0' || initial) {
    const list = await objects.list(r, namespace, { ...opts, limit: 0, continueToken: undefined, resourceVersionMatch: undefined, resourceVersion: rv === '0' ? '0' : undefined });
    for (const item of list.items) write('ADDED', item);
    after = Number(list.metadata.resourceVersion);
    if (initial && bookmarks) write('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(after), annotations: { 'k8s.io/initial-events-end': 'true' } } });
  } else {
    after = Number(rv);
  }
  if (closed) return;
  try {
    watch = objects.watch(r, namespace, opts.labels, opts.fields, after, {
      event: (type: WatchEventType, obj: KubeObject) => write(type, obj),
      progress: () => undefined,
      end: (err) => {
        if (err !== undefined) write('ERROR', err.toStatus());
        finish();
      },
    });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    write('ERROR', err.toStatus());
    finish();
    return;
  }
  // Every revision this master has applied has been published to the watch: a bookmark can
  // safely carry the master's revision.
  if (bookmarks) timers.push(setInterval(() => bookmark(), bookmarkSeconds * 1000));
  if (timeoutSeconds > 0) timers.push(setTimeout(finish, timeoutSeconds * 1000));
}

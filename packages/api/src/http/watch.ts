// Watch: a stream of {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …} events.
// Without a resourceVersion (or with "0", or with sendInitialEvents) the watch starts with an
// ADDED event per existing object; with one it replays every change after it. A watch from a
// compacted revision gets an ERROR event carrying a 410 Expired Status. Over HTTP the events
// are JSON lines of a chunked response; agents get them as frames (agents.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../errors.ts';
import type { ObjectStore, ObjectWatch } from '../objects.ts';
import { apiVersionOf, type ResourceInfo } from '../resources.ts';
import type { KubeObject, WatchEventType } from '../types/meta.ts';
import { listOptions } from './handlers.ts';

/** A watcher that lets this much output pile up unsent is cut off (it then re-watches). */
const MAX_BUFFERED = 16 * 1024 * 1024;
/** While the initial list is written, the watch waits for the client above this much unread. */
const ROOM_BYTES = 1024 * 1024;

/** Where a watch's events go. `write` returns false when the watcher cannot take more. */
export interface WatchOutput {
  write(type: WatchEventType, object: unknown): boolean;
  /**
   * Several events at once (a chunk of the initial list), if the transport can take them as
   * one write: over TLS each write of a response is encrypted on its own, and the thousands of
   * one-event writes a large initial list buffered were one writev of 110 ms.
   */
  writeAll?(type: WatchEventType, objects: readonly unknown[]): boolean;
  /** The watch is over (the transport closes its stream). */
  end(): void;
  /** Resolves when the watcher has room for more (between chunks of the initial list). */
  room?(): Promise<void>;
}

/**
 * Runs a watch until it ends or the returned stop() is called. Throws ApiError before the
 * first event if the request cannot be served (bad options, a resourceVersion from the future).
 */
export async function runWatch(objects: ObjectStore, r: ResourceInfo, namespace: string | undefined, q: URLSearchParams, bookmarkSeconds: number, out: WatchOutput): Promise<() => void> {
  const opts = listOptions(q, r);
  const bookmarks = q.get('allowWatchBookmarks') === 'true';
  const initial = q.get('sendInitialEvents') === 'true';
  const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 0);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) throw new ApiError('BadRequest', 'timeoutSeconds must be a non-negative number');
  const rv = opts.resourceVersion;
  if (rv !== undefined && rv !== '' && rv !== '0' && Number(rv) > objects.revision) {
    // Catch up with the cluster first (a linearizable read), then decide.
    await objects.list(r, namespace, { ...opts, limit: 1, resourceVersion: undefined, continueToken: undefined, resourceVersionMatch: undefined });
    if (Number(rv) > objects.revision) throw new ApiError('Timeout', `Too large resource version: ${rv}, current: ${objects.revision}`, { retryAfterSeconds: 1 });
  }

  let closed = false;
  let watch: ObjectWatch | undefined;
  const timers: NodeJS.Timeout[] = [];
  const stop = (): void => {
    if (closed) return;
    closed = true;
    watch?.cancel();
    for (const t of timers) clearInterval(t);
    out.end();
  };
  const write = (type: WatchEventType, object: unknown): boolean => {
    if (closed) return false;
    if (out.write(type, object)) return true;
    stop();
    return false;
  };
  /** A chunk of the initial list, in one write where the transport can take it. */
  const added = (objects: readonly KubeObject[]): boolean => {
    if (out.writeAll === undefined) return objects.every((o) => write('ADDED', o));
    if (closed) return false;
    if (out.writeAll('ADDED', objects)) return true;
    stop();
    return false;
  };

  let after: number;
  if (rv === undefined || rv === '' || rv === '0' || initial) {
    // The initial list a chunk at a time, yielding between chunks (and waiting for the
    // watcher to read), so a watch of 30,000 objects holds neither the list nor the loop.
    const scan = objects.scan(r, namespace, { ...opts, limit: 0, continueToken: undefined, resourceVersionMatch: undefined, resourceVersion: rv === '0' ? '0' : undefined });
    for (let step = await scan.next(); ; step = await scan.next()) {
      if (step.done === true) {
        after = Number(step.value.resourceVersion);
        break;
      }
      if (!added(step.value)) {
        await scan.return({ resourceVersion: '' });
        return stop;
      }
      await (out.room?.() ?? new Promise<void>((resolve) => setImmediate(resolve)));
      if (closed) {
        await scan.return({ resourceVersion: '' });
        return stop;
      }
    }
    if (initial && bookmarks) write('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(after), annotations: { 'k8s.io/initial-events-end': 'true' } } });
  } else {
    after = Number(rv);
  }
  if (closed) return stop;
  try {
    watch = objects.watch(r, namespace, opts.labels, opts.fields, after, {
      event: (type: WatchEventType, obj: KubeObject) => write(type, obj),
      progress: () => undefined,
      end: (err) => {
        // Only a compacted start is the client's to handle (410: list again). A watcher that
        // fell behind, or a master shutting down, just sees the stream end, as with
        // Kubernetes: clients watch again from the last resourceVersion they saw.
        if (err?.reason === 'Expired') write('ERROR', err.toStatus());
        stop();
      },
    });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    write('ERROR', err.toStatus());
    stop();
    return stop;
  }
  // The watch may have ended inside objects.watch (a start too far behind): no timers then.
  if (closed) return stop;
  // A bookmark carries the revision up to which every event has been written (events may be
  // waiting their turn to be decoded: see ObjectStore.watch), never one past them.
  if (bookmarks) {
    timers.push(setInterval(() => write('BOOKMARK', { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(watch?.deliveredRevision() ?? after) } }), bookmarkSeconds * 1000));
  }
  if (timeoutSeconds > 0) timers.push(setTimeout(stop, timeoutSeconds * 1000));
  return stop;
}

/** A watch over HTTP: chunked JSON lines until the watch ends or the client goes away. */
export async function serveWatch(req: IncomingMessage, res: ServerResponse, objects: ObjectStore, r: ResourceInfo, namespace: string | undefined, q: URLSearchParams, bookmarkSeconds: number): Promise<void> {
  let started = false;
  const stop = await runWatch(objects, r, namespace, q, bookmarkSeconds, {
    write: (type, object) => {
      if (res.destroyed) return false;
      if (!started) {
        started = true;
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
      }
      res.write(`${JSON.stringify({ type, object })}\n`);
      return res.writableLength <= MAX_BUFFERED;
    },
    writeAll: (type, objects) => {
      if (res.destroyed) return false;
      if (!started) {
        started = true;
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
      }
      if (objects.length > 0) res.write(objects.map((object) => `${JSON.stringify({ type, object })}\n`).join(''));
      return res.writableLength <= MAX_BUFFERED;
    },
    room: () => roomIn(res, ROOM_BYTES),
    end: () => {
      if (!started) {
        started = true;
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
      }
      res.end();
    },
  });
  if (!started) {
    // No event yet: send the headers now, so the client knows the watch is open.
    started = true;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
  }
  req.on('close', stop);
  res.on('close', stop);
  if (req.destroyed || res.destroyed) stop();
}

/**
 * Resolves on the next turn of the loop while `res` has less than `bytes` unread (or is
 * gone), else once it drains or closes: a writer of a long answer yields, and waits for a slow
 * reader, between chunks.
 */
export function roomIn(res: ServerResponse, bytes: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (res.writableLength < bytes || res.destroyed) {
      setImmediate(resolve);
      return;
    }
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

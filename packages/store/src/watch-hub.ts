import { KvError, isKvError } from './errors.ts';
import { boundsOf, inBounds, type Bounds } from './kv/keyrange.ts';
import type { MvccStore, RevisionEvents } from './kv/mvcc.ts';
import type { WatchEvent, WatchRequest } from './kv/types.ts';

export interface WatchSink {
  /**
   * Delivers one revision's matching events; returning false means the watcher cannot keep
   * up. Throwing a KvError ends the watch with that error.
   */
  readonly deliver: (batch: RevisionEvents) => boolean;
  /** The watch ended (cancelled by the watcher when `err` is undefined). */
  readonly end: (err?: KvError) => void;
}

interface Watcher {
  readonly bounds: Bounds;
  readonly prevKv: boolean;
  readonly sink: WatchSink;
  /** The first revision this watcher has not been sent yet. */
  next: number;
}

/**
 * The watches served by one master. A new watch first replays the store's history from its
 * start revision, then receives each new revision as it is applied, so it sees every change
 * in order with no gap. A watcher that cannot keep up is ended with `slow-consumer` rather
 * than buffered without bound; it re-watches from the revision it got to.
 */
export class WatchHub {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 1;

  constructor(private store: MvccStore) {
    store.onRevision = (batch) => this.publish(batch);
  }

  /**
   * Starts a watch; throws KvError (`compacted`, `invalid-request`). Returns its id and the
   * first revision it will report from (its start revision, or the next one).
   */
  add(req: WatchRequest, sink: WatchSink): { id: number; from: number } {
    const bounds = boundsOf(req);
    const start = req.startRevision ?? 0;
    const w: Watcher = { bounds, prevKv: req.prevKv === true, sink, next: start > 0 ? start : this.store.revision + 1 };
    const backlog = start > 0 ? this.store.eventsSince(start, bounds) : [];
    const id = this.nextId++;
    const from = w.next;
    this.watchers.set(id, w);
    for (const batch of backlog) if (!this.send(id, w, batch)) break;
    if (this.watchers.has(id)) w.next = Math.max(w.next, this.store.revision + 1);
    return { id, from };
  }

  cancel(id: number): void {
    const w = this.watchers.get(id);
    if (w === undefined) return;
    this.watchers.delete(id);
    w.sink.end();
  }

  count(): number {
    return this.watchers.size;
  }

  /**
   * The state machine was replaced (a snapshot from the leader was installed): catch every
   * watcher up from where it was, from the new store's history.
   */
  replaceStore(store: MvccStore): void {
    this.store = store;
    store.onRevision = (batch) => this.publish(batch);
    for (const [id, w] of this.watchers) {
      try {
        for (const batch of store.eventsSince(w.next, w.bounds)) if (!this.send(id, w, batch)) break;
        w.next = Math.max(w.next, store.revision + 1);
      } catch (err) {
        if (!isKvError(err)) throw err;
        this.end(id, err);
      }
    }
  }

  /** Ends every watch with `err` (the master is shutting down). */
  endAll(err: KvError): void {
    for (const id of [...this.watchers.keys()]) this.end(id, err);
  }

  private publish(batch: RevisionEvents): void {
    for (const [id, w] of this.watchers) {
      if (batch.revision < w.next) continue;
      const events = batch.events.filter((e) => inBounds(e.kv.key, w.bounds));
      w.next = batch.revision + 1;
      if (events.length > 0) this.send(id, w, { revision: batch.revision, events });
    }
  }

  private send(id: number, w: Watcher, batch: RevisionEvents): boolean {
    const events: WatchEvent[] = w.prevKv ? [...batch.events] : batch.events.map((e) => (e.prevKv === undefined ? e : { type: e.type, kv: e.kv }));
    w.next = batch.revision + 1;
    let delivered: boolean;
    try {
      delivered = w.sink.deliver({ revision: batch.revision, events });
    } catch (err) {
      // A sink that fails ends its own watch, never the apply loop that published the revision.
      this.end(id, isKvError(err) ? err : new KvError('unavailable', `the watch failed on this master (${(err as Error).message}); watch again from revision ${batch.revision}`));
      return false;
    }
    if (delivered) return true;
    this.end(id, new KvError('slow-consumer', `the watcher fell behind at revision ${batch.revision}; watch again from there`));
    return false;
  }

  private end(id: number, err: KvError): void {
    const w = this.watchers.get(id);
    if (w === undefined) return;
    this.watchers.delete(id);
    w.sink.end(err);
  }
}

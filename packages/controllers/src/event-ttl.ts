// Events expire, as Kubernetes' (the API server's --event-ttl, 1 h by default): an Event not
// written for the TTL is deleted. Kubernetes gets this from etcd leases (every write of an
// event re-attaches one); here the leader deletes them. Flotilla's store has leases, but the
// API's object store attaches none, each write of an Event would have to renew one, and the
// store restarts every lease's countdown when leadership moves (so a TTL could stretch with
// each election); a controller needs no change below the API, and it uses only the
// informers every controller uses. An event's age is counted from the latest of its
// lastTimestamp, eventTime, firstTimestamp and metadata.creationTimestamp (what a write would
// refresh), on this controller's clock.
import { ApiError, objectKey, WorkQueue, type Event, type Informer } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';

/** Kubernetes' default --event-ttl. */
export const DEFAULT_EVENT_TTL_MS = 60 * 60 * 1000;

export interface EventTTLOptions {
  /** How long an Event lives after it was last written (default 1 h). */
  readonly ttlMs?: number;
  /** Deletions at once (default 2). */
  readonly concurrency?: number;
}

/** core/v1 Event also has eventTime (a MicroTime) when written by the events.k8s.io API. */
type AnyEvent = Event & { eventTime?: string };

/** The time an event was last written, as ms since the epoch (undefined: no usable timestamp). */
export function lastWritten(e: AnyEvent): number | undefined {
  let latest: number | undefined;
  for (const t of [e.lastTimestamp, e.eventTime, e.firstTimestamp, e.metadata.creationTimestamp]) {
    const ms = typeof t === 'string' ? Date.parse(t) : Number.NaN;
    if (!Number.isNaN(ms)) latest = latest === undefined ? ms : Math.max(latest, ms);
  }
  return latest;
}

export class EventTTLController implements Controller {
  readonly name = 'eventttl';
  readonly ttlMs: number;
  private readonly events: Informer<AnyEvent>;
  private readonly queue: WorkQueue;
  /** When this controller first saw an event without any timestamp (its age counts from then). */
  private readonly firstSeen = new Map<string, number>();
  private started = false;

  constructor(
    private readonly ctx: ControllerContext,
    options: EventTTLOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_EVENT_TTL_MS;
    if (!(this.ttlMs > 0)) throw new Error(`the event TTL must be positive (got ${this.ttlMs} ms)`);
    this.queue = new WorkQueue((key) => this.sync(key), { concurrency: options.concurrency ?? 2, name: this.name, logger: ctx.logger });
    this.events = ctx.informers.informer<AnyEvent>('events').on({
      add: (e) => this.schedule(e),
      update: (_, e) => this.schedule(e),
      delete: (e) => this.firstSeen.delete(objectKey(e)),
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const e of this.events.list()) this.schedule(e);
  }

  stop(): void {
    this.started = false;
    this.queue.stop();
    this.firstSeen.clear();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private expiresAt(e: AnyEvent): number {
    const key = objectKey(e);
    let written = lastWritten(e);
    if (written === undefined) {
      written = this.firstSeen.get(key) ?? this.ctx.now();
      this.firstSeen.set(key, written);
    }
    return written + this.ttlMs;
  }

  private schedule(e: AnyEvent): void {
    if (!this.started) return;
    // (An update that moved the time later leaves an earlier timer: that pass looks and waits again.)
    this.queue.addAfter(objectKey(e), this.expiresAt(e) - this.ctx.now());
  }

  private async sync(key: string): Promise<void> {
    if (!this.started) return;
    const e = this.events.getByKey(key);
    if (e === undefined) return;
    const left = this.expiresAt(e) - this.ctx.now();
    if (left > 0) {
      this.queue.addAfter(key, left);
      return;
    }
    try {
      // Pinned to the version we judged: an event written again meanwhile is younger.
      await this.ctx.client.delete('events', e.metadata.namespace, e.metadata.name ?? '', { preconditions: { uid: e.metadata.uid ?? '', resourceVersion: e.metadata.resourceVersion ?? '' } });
      this.firstSeen.delete(key);
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return;
      // Written again since the cache saw it (or replaced by a namesake): its event schedules it anew.
      if (err instanceof ApiError && err.reason === 'Conflict') return;
      throw err;
    }
  }
}

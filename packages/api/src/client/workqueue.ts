// A rate-limited work queue of keys, as client-go's: a key waiting is queued once however
// often it is added; a key is never processed by two workers at once (one added while it is
// processed runs again afterwards); a failure re-queues it after the larger of two delays
// (client-go's DefaultControllerRateLimiter): its own exponential backoff (5 ms doubling per
// consecutive failure, capped) and an overall token bucket shared by every key (10 retries a
// second, bursts of 100), so a thousand failing keys cannot hammer the API either. A success
// forgets the key's failures.
//
// One rule is stricter than client-go's: a key waiting out a backoff is not run early because
// it was added again. Informer events re-add keys, and a sync that fails after a write that
// succeeded (a status that records the failure) produces such an event itself: client-go runs
// it at once, and a controller whose write is not a no-op then spins (issue 12: the
// Deployment controller rewrote a status ~150 times a second). Here the added key joins the
// retry already scheduled, so whatever the events, a failing key is attempted on the backoff
// schedule: n attempts take at least 5 ms · (2^(n-1) − 1). The price is that a fix made from
// outside (a namespace recreated, a spec corrected) waits for the pending retry, at most
// maxDelayMs; that is why the cap is 30 s rather than client-go's 1000 s.
import type { Logger } from '@flotilla/wire';

export interface WorkQueueOptions {
  /** Keys processed at once (default 4). */
  readonly concurrency?: number;
  /** First retry delay after a failure (default 5 ms), doubling up to maxDelayMs (default 30 s). */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** The overall bucket: retries per second across all keys (default 10) and its burst (default 100). */
  readonly retryQps?: number;
  readonly retryBurst?: number;
  readonly name?: string;
  readonly logger?: Logger;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Added again while processing: queued once that ends. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** Keys waiting out a failure's backoff: not run before this time (Date.now()). */
  private readonly backoffUntil = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  /** The overall bucket: tokens left (may go negative: reserved ahead) as of `bucketAt`. */
  private bucketTokens: number;
  private bucketAt = Date.now();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly process: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.bucketTokens = options.retryBurst ?? 100;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const until = this.backoffUntil.get(key);
    if (until !== undefined) {
      const now = Date.now();
      if (until > now) {
        // In backoff: run with the retry, not before (see the top).
        this.schedule(key, until);
        return;
      }
      this.backoffUntil.delete(key);
    }
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Adds `key` after `ms`; with several pending for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    this.schedule(key, Date.now() + ms);
  }

  /** Re-queues a key after its next backoff delay (and no earlier than the overall bucket allows). */
  addRateLimited(key: string): void {
    if (this.stopped) return;
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.max(this.backoff(n), this.reserveBucket());
    const at = Date.now() + delay;
    this.backoffUntil.set(key, at);
    this.schedule(key, at);
  }

  /** The delay the n-th consecutive failure waits (its own part; the bucket may add to it). */
  backoff(n: number): number {
    return Math.min(this.options.maxDelayMs ?? 30_000, (this.options.baseDelayMs ?? 5) * 2 ** Math.min(n, 30));
  }

  /** How many consecutive failures `key` has had (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
    this.backoffUntil.delete(key);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or being processed (timers may still add later). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.backoffUntil.clear();
  }

  /** One timer per key, at the earliest time asked for. */
  private schedule(key: string, at: number): void {
    const pending = this.timers.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    this.timers.set(key, {
      at,
      timer: setTimeout(() => {
        this.timers.delete(key);
        this.add(key);
      }, Math.max(0, at - Date.now())),
    });
  }

  /** Takes a token from the overall bucket; returns how long to wait for it (client-go's Reserve().Delay()). */
  private reserveBucket(): number {
    const qps = this.options.retryQps ?? 10;
    const burst = this.options.retryBurst ?? 100;
    const now = Date.now();
    this.bucketTokens = Math.min(burst, this.bucketTokens + ((now - this.bucketAt) / 1000) * qps);
    this.bucketAt = now;
    this.bucketTokens -= 1;
    return this.bucketTokens >= 0 ? 0 : Math.ceil((-this.bucketTokens / qps) * 1000);
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 4;
    while (!this.stopped && this.active < limit && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.run(key);
    }
    if (this.queue.length === 0 && this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.process(key);
      this.forget(key);
    } catch (err) {
      if (!this.stopped) {
        this.options.logger?.warn({ queue: this.options.name, key, failures: (this.failures.get(key) ?? 0) + 1, err: (err as Error).message }, 'reconcile failed; retrying with backoff');
        this.addRateLimited(key);
      }
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}

// A rate-limited work queue of keys, as client-go's: a key waiting is queued once however
// often it is added; a key is never processed by two workers at once (one added while it is
// processed runs again afterwards); a failure re-queues it with per-key exponential backoff,
// a success forgets its failures.
import type { Logger } from '@flotilla/wire';

export interface WorkQueueOptions {
  /** Keys processed at once (default 4). */
  readonly concurrency?: number;
  /** First retry delay after a failure (default 5 ms), doubling up to maxDelayMs (default 30 s). */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
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
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly process: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Adds `key` after `ms`; with several pending for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
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
      }, ms),
    });
  }

  /** Re-queues a key after its next backoff delay. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.addAfter(key, this.backoff(n));
  }

  /** The delay the n-th consecutive failure waits. */
  backoff(n: number): number {
    return Math.min(this.options.maxDelayMs ?? 30_000, (this.options.baseDelayMs ?? 5) * 2 ** Math.min(n, 30));
  }

  forget(key: string): void {
    this.failures.delete(key);
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
        this.options.logger?.warn({ queue: this.options.name, key, err: (err as Error).message }, 'reconcile failed; retrying with backoff');
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

// The scheduling queue (kube-scheduler's PriorityQueue, in FIFO order): an active queue of
// pods to try now; a backoff area for pods whose last attempt failed (1 s doubling up to
// 10 s per pod); and the unschedulable pods, parked until something in the cluster changes
// that could let them fit (a node added or changed, a pod leaving a node) — then they move to
// active, or to backoff if their backoff has not yet run out. Pods parked for longer than
// five minutes are tried again anyway, so a missed event cannot strand a pod.
// The queue holds keys only; the scheduler reads the pod from the informer when it pops one.

export interface SchedulingQueueOptions {
  readonly now: () => number;
  /** Called when a key becomes poppable. */
  readonly onActive: () => void;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly maxUnschedulableMs?: number;
}

type Where = 'active' | 'backoff' | 'unschedulable' | 'inFlight';

interface Entry {
  readonly key: string;
  where: Where;
  /** Failed attempts so far: the next backoff is initial·2^(attempts-1). */
  attempts: number;
  backoffUntil: number;
  parkedAt: number;
  timer: NodeJS.Timeout | undefined;
}

const FLUSH_INTERVAL_MS = 30_000;

export class SchedulingQueue {
  private readonly entries = new Map<string, Entry>();
  /** The entries whose where is 'unschedulable' (so a cluster event touches only those). */
  private readonly parked = new Set<Entry>();
  private active: string[] = [];
  private head = 0;
  private readonly flushTimer: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly options: SchedulingQueueOptions) {
    this.flushTimer = setInterval(() => this.flushUnschedulableLeftover(), FLUSH_INTERVAL_MS);
    this.flushTimer.unref();
  }

  /** A pod that needs a decision; nothing happens if the queue already holds it anywhere. */
  add(key: string): void {
    if (this.stopped || this.entries.has(key)) return;
    const e: Entry = { key, where: 'active', attempts: 0, backoffUntil: 0, parkedAt: 0, timer: undefined };
    this.entries.set(key, e);
    this.pushActive(e);
  }

  /** The pending pod itself changed (spec, labels): if parked, it may fit now. */
  podChanged(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) this.add(key);
    else if (e.where === 'unschedulable') this.activate(e);
  }

  /** The next key to decide on; it stays "in flight" until done(), unschedulable() or backoff(). */
  pop(): string | undefined {
    while (this.head < this.active.length) {
      const key = this.active[this.head++]!;
      const e = this.entries.get(key);
      if (e === undefined || e.where !== 'active') continue; // deleted or moved since it was pushed
      e.where = 'inFlight';
      this.compact();
      return key;
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get activeLength(): number {
    return this.active.length - this.head;
  }

  /** Bound (or no longer ours to schedule): forget it and its failures. */
  done(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    if (e.timer !== undefined) clearTimeout(e.timer);
    this.parked.delete(e);
    this.entries.delete(key);
  }

  /** No node fits: park it until a cluster event (or the leftover flush). */
  unschedulable(key: string): void {
    const e = this.failed(key);
    if (e === undefined) return;
    e.where = 'unschedulable';
    e.parkedAt = this.options.now();
    this.parked.add(e);
  }

  /** A parked pod to look at again once its backoff has run out (e.g. its status write raced). */
  requeue(key: string): void {
    const e = this.entries.get(key);
    if (e !== undefined && e.where === 'unschedulable') this.activate(e);
  }

  /** The attempt failed for another reason (a bind error): try again after the backoff. */
  backoff(key: string): void {
    const e = this.failed(key);
    if (e !== undefined) this.activate(e);
  }

  /** Something changed that could make parked pods fit (kube-scheduler's MoveAllToActiveOrBackoffQueue). */
  moveAllToActiveOrBackoff(): void {
    for (const e of [...this.parked]) this.activate(e);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.flushTimer);
    for (const e of this.entries.values()) if (e.timer !== undefined) clearTimeout(e.timer);
    this.entries.clear();
    this.parked.clear();
    this.active = [];
    this.head = 0;
  }

  /** The delay after the n-th failed attempt (n ≥ 1). */
  backoffDuration(attempts: number): number {
    const initial = this.options.initialBackoffMs ?? 1000;
    return Math.min(this.options.maxBackoffMs ?? 10_000, initial * 2 ** Math.min(attempts - 1, 30));
  }

  private failed(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e === undefined || this.stopped) return undefined;
    e.attempts++;
    e.backoffUntil = this.options.now() + this.backoffDuration(e.attempts);
    return e;
  }

  /** To active now, or when its backoff runs out. */
  private activate(e: Entry): void {
    this.parked.delete(e);
    const wait = e.backoffUntil - this.options.now();
    if (wait <= 0) {
      this.pushActive(e);
      return;
    }
    e.where = 'backoff';
    if (e.timer !== undefined) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (this.entries.get(e.key) === e && e.where === 'backoff') this.pushActive(e);
    }, wait);
  }

  private pushActive(e: Entry): void {
    this.parked.delete(e);
    e.where = 'active';
    this.active.push(e.key);
    this.options.onActive();
  }

  private flushUnschedulableLeftover(): void {
    const limit = this.options.maxUnschedulableMs ?? 5 * 60_000;
    const now = this.options.now();
    for (const e of [...this.parked]) if (now - e.parkedAt >= limit) this.activate(e);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.active.length) {
      this.active = this.active.slice(this.head);
      this.head = 0;
    }
  }
}

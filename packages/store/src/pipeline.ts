import { KvError } from './errors.ts';
import type { ApplyOutcome } from './kv/mvcc.ts';
import type { Message, Ready } from '@flotilla/raft';

// The two queues between clients and the Raft loop: writes waiting to be proposed and applied,
// and linearizable reads waiting for a read index and then for the apply to catch up.

interface Waiter<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: KvError) => void;
}

interface PendingWrite {
  readonly key: string;
  readonly data: Uint8Array;
  readonly waiters: Waiter<ApplyOutcome>[];
  deadline: number;
  proposed: boolean;
  /** When it was last handed to Raft (proposed here, or forwarded to the leader). */
  proposedAt: number;
}

/**
 * Writes from submission to application. Each write is keyed by its session (client and
 * sequence number): a retry arriving while the first attempt is pending joins it; a write whose
 * proposal may have been lost (leadership moved) is proposed again, which the state machine's
 * session table makes harmless.
 */
export class WriteQueue {
  private readonly byKey = new Map<string, PendingWrite>();
  private queued: PendingWrite[] = [];
  /** Writes this master appended as leader, by log index, to spot ones a new leader replaced. */
  private readonly expected = new Map<number, { write: PendingWrite; term: number }>();

  submit(key: string, data: Uint8Array, deadline: number): Promise<ApplyOutcome> {
    return new Promise((resolve, reject) => {
      const existing = this.byKey.get(key);
      if (existing !== undefined) {
        existing.waiters.push({ resolve, reject });
        existing.deadline = Math.max(existing.deadline, deadline);
        return;
      }
      const write: PendingWrite = { key, data, waiters: [{ resolve, reject }], deadline, proposed: false, proposedAt: 0 };
      this.byKey.set(key, write);
      this.queued.push(write);
    });
  }

  hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Removes and returns queued writes, up to `maxBytes` of commands (at least one). */
  take(maxBytes: number, now: number): { key: string; data: Uint8Array }[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queued.length && (n === 0 || bytes + this.queued[n]!.data.byteLength <= maxBytes)) {
      bytes += this.queued[n]!.data.byteLength;
      n++;
    }
    const batch = this.queued.splice(0, n);
    for (const w of batch) {
      w.proposed = true;
      w.proposedAt = now;
    }
    return batch;
  }

  /** The batch could not be proposed now (no leader yet): it goes back to the front. */
  putBack(batch: readonly { key: string }[]): void {
    const writes = batch.map((b) => this.byKey.get(b.key)).filter((w): w is PendingWrite => w !== undefined);
    for (const w of writes) w.proposed = false;
    this.queued = [...writes, ...this.queued];
  }

  /** This master appended the batch as leader, ending at log index `last` in `term`. */
  appended(batch: readonly { key: string }[], last: number, term: number): void {
    batch.forEach((b, i) => {
      const w = this.byKey.get(b.key);
      if (w !== undefined) this.expected.set(last - (batch.length - 1 - i), { write: w, term });
    });
  }

  /** An entry was applied at `index`: if a write of ours was expected there in another term, it was lost. */
  appliedEntry(index: number, term: number): void {
    const e = this.expected.get(index);
    if (e === undefined) return;
    this.expected.delete(index);
    if (e.term !== term && this.byKey.get(e.write.key) === e.write && e.write.proposed) this.requeue(e.write);
  }

  /** A write's command was applied: answer everyone waiting for it. */
  resolve(key: string, outcome: ApplyOutcome): void {
    const w = this.byKey.get(key);
    if (w === undefined) return;
    this.byKey.delete(key);
    for (const waiter of w.waiters) waiter.resolve(outcome);
  }

  /** Leadership moved: anything proposed and not applied may be lost, so propose it again. */
  requeueProposed(): void {
    this.expected.clear();
    for (const w of this.byKey.values()) if (w.proposed) this.requeue(w);
  }

  /**
   * A follower forwards proposals to the leader without an answer; one dropped on the way
   * (a full connection, a leader that refused it) would wait out its deadline. Writes handed
   * over before `before` and not applied yet are proposed again.
   */
  requeueStale(before: number): void {
    for (const w of this.byKey.values()) if (w.proposed && w.proposedAt < before) this.requeue(w);
  }

  private requeue(w: PendingWrite): void {
    w.proposed = false;
    this.queued.push(w);
  }

  /** Rejects writes past their deadline; they may still be applied later (the client retries). */
  expire(now: number): void {
    for (const w of [...this.byKey.values()]) {
      if (w.deadline > now) continue;
      this.byKey.delete(w.key);
      this.queued = this.queued.filter((q) => q !== w);
      for (const waiter of w.waiters) waiter.reject(new KvError('timeout', 'the write was not committed in time; it may or may not have been applied, retry it with the same session to find out'));
    }
  }

  failAll(err: KvError): void {
    for (const w of this.byKey.values()) for (const waiter of w.waiters) waiter.reject(err);
    this.byKey.clear();
    this.queued = [];
    this.expected.clear();
  }
}

interface PendingRead {
  readonly run: () => void;
  readonly reject: (e: KvError) => void;
  readonly deadline: number;
}

/**
 * Linearizable reads (thesis §6.4): reads that arrive together share one read index; each
 * runs once this master has applied up to that index.
 */
export class ReadQueue {
  private waiting: PendingRead[] = [];
  private inFlight: { ctx: string; reads: PendingRead[]; since: number } | undefined;
  private ready: { index: number; reads: PendingRead[] }[] = [];
  private nextCtx = 0;

  add(read: PendingRead): void {
    this.waiting.push(read);
  }

  /** A read index should be requested now: returns its context, or undefined if not needed yet. */
  nextBatch(prefix: string, now: number): string | undefined {
    if (this.inFlight !== undefined || this.waiting.length === 0) return undefined;
    // The prefix must be unique to this process (the node id alone is not: a leader may still
    // hold a read its previous incarnation asked for under the same counter value).
    const ctx = `${prefix}:${++this.nextCtx}`;
    this.inFlight = { ctx, reads: this.waiting, since: now };
    this.waiting = [];
    return ctx;
  }

  /** The read index could not be requested (no leader): the batch waits for the next try. */
  unsent(ctx: string): void {
    if (this.inFlight?.ctx !== ctx) return;
    this.waiting = [...this.inFlight.reads, ...this.waiting];
    this.inFlight = undefined;
  }

  onReadState(ctx: string, index: number): void {
    if (this.inFlight?.ctx !== ctx) return;
    this.ready.push({ index, reads: this.inFlight.reads });
    this.inFlight = undefined;
  }

  /** Runs every read whose index has been applied. */
  serve(applied: number): void {
    if (this.ready.length === 0) return;
    const still: { index: number; reads: PendingRead[] }[] = [];
    for (const batch of this.ready) {
      if (batch.index <= applied) for (const r of batch.reads) r.run();
      else still.push(batch);
    }
    this.ready = still;
  }

  /** A request for a read index may be lost when leadership moves: ask again. */
  retryInFlight(olderThan: number): void {
    if (this.inFlight !== undefined && this.inFlight.since <= olderThan) this.unsent(this.inFlight.ctx);
  }

  expire(now: number): void {
    const timeout = (r: PendingRead): boolean => {
      if (r.deadline > now) return true;
      r.reject(new KvError('timeout', 'the read could not be confirmed with the leader in time'));
      return false;
    };
    this.waiting = this.waiting.filter(timeout);
    if (this.inFlight !== undefined) this.inFlight.reads = this.inFlight.reads.filter(timeout);
    for (const b of this.ready) b.reads = b.reads.filter(timeout);
  }

  failAll(err: KvError): void {
    for (const r of [...this.waiting, ...(this.inFlight?.reads ?? []), ...this.ready.flatMap((b) => b.reads)]) r.reject(err);
    this.waiting = [];
    this.inFlight = undefined;
    this.ready = [];
  }
}

/**
 * May this Ready's messages leave before its entries are on disk? A leader's may (thesis
 * §10.2.1): its term and vote were synced when it campaigned, and a commit that counts its
 * own new entries is announced only in a later Ready, which waits for this write. Except
 * when a message already announces a commit (or read index) beyond what is on disk
 * (`stable`): a leader that is the only voter commits its new entries at once, and a learner
 * or a follower's read must not act on entries that a crash before the fsync would lose.
 */
export function sendsBeforePersisting(rd: Ready, leading: boolean, stable: number): boolean {
  return leading && rd.messages.every((m) => !announcesBeyond(m, stable));
}

function announcesBeyond(m: Message, stable: number): boolean {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
      return m.commit > stable;
    case 'readIndexResponse':
      return m.index > stable;
    default:
      return false;
  }
}

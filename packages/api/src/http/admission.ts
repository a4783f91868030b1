// How many requests a master serves at once, and whose go first: the bounds that keep one
// credential (or a thousand clients) from taking a master's memory, loop or seats from the
// others. A small model of Kubernetes' API Priority and Fairness:
//
// - Seats. Reads and changes each have a fixed number (kube-apiserver's
//   --max-requests-inflight 400 and --max-mutating-requests-inflight 200). A request holds a
//   seat while it runs; an unpaged list or a watch's initial list holds one while it reads.
// - Fair queuing. When every seat is taken, a request waits in its user's queue (bounded in
//   length and in time); a freed seat goes to the next user in turn (round robin over the users
//   that wait), so a user flooding the master waits behind itself, not in front of others.
//   No user may hold more than half the seats of a kind while anyone else waits.
// - Long-running requests (watches and log streams) hold no seat but are counted, per master
//   and per user.
// Past a bound the request gets 429 TooManyRequests with Retry-After, naming the bound.
import { ApiError } from '../errors.ts';

export interface AdmissionLimits {
  /** Seats for reads. */
  readonly reads: number;
  /** Seats for changes. */
  readonly changes: number;
  /** Watches and log streams open on this master at once. */
  readonly longRunning: number;
  /** … and per user. */
  readonly longRunningPerUser: number;
  /** Requests of one user that may wait for a seat, per kind. */
  readonly queuePerUser: number;
  /** The longest a request waits for a seat before it gets 429. */
  readonly queueWaitMs: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = { reads: 400, changes: 200, longRunning: 4000, longRunningPerUser: 250, queuePerUser: 64, queueWaitMs: 5000 };

export type SeatKind = 'reads' | 'changes';

interface Waiter {
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

/** One kind of seat, shared fairly between users. */
class Seats {
  private used = 0;
  private readonly held = new Map<string, number>();
  /** Each waiting user's queue; Map order is the round-robin order. */
  private readonly queues = new Map<string, Waiter[]>();

  constructor(
    private readonly kind: SeatKind,
    private readonly total: number,
    private readonly limits: AdmissionLimits,
  ) {}

  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Resolves with release() once `user` holds a seat; rejects with a 429 ApiError. */
  acquire(user: string): Promise<() => void> | (() => void) {
    if (this.queues.size === 0 && this.used < this.total && this.mayHold(user)) return this.take(user);
    const queue = this.queues.get(user) ?? [];
    if (queue.length >= this.limits.queuePerUser) {
      throw tooMany(`this master is serving ${this.total} ${this.kind} at once and ${queue.length} more of yours are waiting (the bound per user); retry in a second`);
    }
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.take(user));
        },
        timer: setTimeout(() => {
          const q = this.queues.get(user);
          const at = q?.indexOf(waiter) ?? -1;
          if (at >= 0) q!.splice(at, 1);
          if (q?.length === 0) this.queues.delete(user);
          reject(tooMany(`this master is serving ${this.total} ${this.kind} at once and none was free within ${this.limits.queueWaitMs} ms; retry in a second (or on another master)`));
        }, this.limits.queueWaitMs),
      };
      queue.push(waiter);
      this.queues.set(user, queue);
      this.dispatch();
    });
  }

  /** While anyone else waits, one user holds at most half the seats. */
  private mayHold(user: string): boolean {
    const others = this.queues.size - (this.queues.has(user) ? 1 : 0);
    return others === 0 || (this.held.get(user) ?? 0) < Math.max(1, Math.floor(this.total / 2));
  }

  private take(user: string): () => void {
    this.used++;
    this.held.set(user, (this.held.get(user) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      const n = (this.held.get(user) ?? 1) - 1;
      if (n === 0) this.held.delete(user);
      else this.held.set(user, n);
      this.dispatch();
    };
  }

  /** Hands free seats to waiting users in turn. */
  private dispatch(): void {
    let skipped = 0;
    while (this.used < this.total && this.queues.size > 0 && skipped < this.queues.size) {
      const [user, queue] = this.queues.entries().next().value as [string, Waiter[]];
      // Rotate: this user goes to the back of the turn order.
      this.queues.delete(user);
      if (!this.mayHold(user)) {
        this.queues.set(user, queue);
        skipped++;
        continue;
      }
      skipped = 0;
      const waiter = queue.shift()!;
      if (queue.length > 0) this.queues.set(user, queue);
      waiter.grant();
    }
  }
}

function tooMany(message: string): ApiError {
  return new ApiError('TooManyRequests', message, { retryAfterSeconds: 1 });
}

export class Admission {
  private readonly seats: Record<SeatKind, Seats>;
  private longRunning = 0;
  private readonly longByUser = new Map<string, number>();

  constructor(readonly limits: AdmissionLimits = DEFAULT_ADMISSION) {
    this.seats = { reads: new Seats('reads', limits.reads, limits), changes: new Seats('changes', limits.changes, limits) };
  }

  /** Waits for a seat of `kind` for `user`; returns release(). Throws (or rejects with) a 429 ApiError. */
  async seat(kind: SeatKind, user: string): Promise<() => void> {
    return this.seats[kind].acquire(user);
  }

  /** Counts a watch or log stream for `user`; returns release(). Throws a 429 ApiError past a bound. */
  longRunningFor(user: string, what: string): () => void {
    const mine = this.longByUser.get(user) ?? 0;
    if (this.longRunning >= this.limits.longRunning) throw tooMany(`this master already serves ${this.limits.longRunning} watches and log streams (its bound); retry in a second, or on another master`);
    if (mine >= this.limits.longRunningPerUser) throw tooMany(`${user} already holds ${mine} watches and log streams on this master (the bound per user); close some before opening another ${what}`);
    this.longRunning++;
    this.longByUser.set(user, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.longRunning--;
      const n = (this.longByUser.get(user) ?? 1) - 1;
      if (n === 0) this.longByUser.delete(user);
      else this.longByUser.set(user, n);
    };
  }

  /** What is in use now (for tests and status). */
  usage(): { reads: number; changes: number; waiting: number; longRunning: number } {
    return { reads: this.seats.reads.inUse, changes: this.seats.changes.inUse, waiting: this.seats.reads.waiting + this.seats.changes.waiting, longRunning: this.longRunning };
  }
}

import type { SeededRandom } from '../rand.ts';
import type { Message, NodeId } from '../types.ts';

/** Link faults applied to every message on the simulated network. */
export interface LinkFaults {
  /** Probability that a message is lost. */
  readonly drop: number;
  /** Probability that a message is delivered twice. */
  readonly duplicate: number;
  /** Extra delay, uniform in [0, maxDelay] ms, on top of the base latency; reorders messages. */
  readonly maxDelay: number;
}

export const NO_FAULTS: LinkFaults = { drop: 0, duplicate: 0, maxDelay: 0 };

interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly message: Message;
}

/**
 * An in-memory network with a seeded fault model: loss, duplication, delay (hence
 * reordering) and partitions. Messages are deep-copied when sent, as a real transport would
 * serialize them, so no two nodes ever share a mutable object.
 */
export class SimNetwork {
  private readonly heap: InFlight[] = [];
  private seq = 0;
  faults: LinkFaults = NO_FAULTS;
  /** Partition group of each node; nodes absent from the map are in group 0. */
  private readonly groups = new Map<NodeId, number>();
  private readonly filters: ((m: Message) => boolean)[] = [];
  sent = 0;
  dropped = 0;

  constructor(
    private readonly random: SeededRandom,
    private readonly baseLatency: { min: number; max: number } = { min: 1, max: 5 },
  ) {}

  /** Splits the nodes into groups that cannot reach each other. */
  partition(groups: ReadonlyMap<NodeId, number>): void {
    this.groups.clear();
    for (const [id, g] of groups) this.groups.set(id, g);
  }

  heal(): void {
    this.groups.clear();
  }

  /** Drops every message matching `filter` (at send and at delivery) until unblock(). */
  block(filter: (m: Message) => boolean): void {
    this.filters.push(filter);
  }

  unblock(): void {
    this.filters.length = 0;
  }

  private blocked(m: Message): boolean {
    return this.filters.length > 0 && this.filters.some((f) => f(m));
  }

  isPartitioned(): boolean {
    return this.groups.size > 0;
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return (this.groups.get(from) ?? 0) === (this.groups.get(to) ?? 0);
  }

  send(message: Message, now: number): void {
    this.sent++;
    if (!this.canReach(message.from, message.to) || this.blocked(message) || this.random.chance(this.faults.drop)) {
      this.dropped++;
      return;
    }
    const copy = structuredClone(message);
    this.enqueue(copy, now);
    if (this.random.chance(this.faults.duplicate)) this.enqueue(copy, now);
  }

  private enqueue(message: Message, now: number): void {
    const { min, max } = this.baseLatency;
    const latency = min + this.random.intn(max - min + 1);
    const delay = this.faults.maxDelay > 0 ? this.random.intn(this.faults.maxDelay + 1) : 0;
    this.push({ at: now + latency + delay, seq: this.seq++, message });
  }

  /** The next message due at or before `until`, if any. Partitions also cut messages already in flight. */
  pop(until: number): Message | undefined {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      const { message } = this.popMin();
      if (this.canReach(message.from, message.to) && !this.blocked(message)) return message;
      this.dropped++;
    }
    return undefined;
  }

  /** Drops everything in flight (used when the liveness phase starts from a clean slate). */
  clear(): void {
    this.dropped += this.heap.length;
    this.heap.length = 0;
  }

  // A binary heap ordered by (at, seq): deterministic for equal delivery times.
  private less(a: InFlight, b: InFlight): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(item: InFlight): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private popMin(): InFlight {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

import { quorumIndex } from './quorum.ts';
import type { NodeId } from './types.ts';

export interface PendingRead {
  readonly ctx: string;
  /** The commit index when the read arrived: the read may be served once that is applied. */
  readonly index: number;
  /** Who asked: the leader itself or a follower to answer with readIndexResponse. */
  readonly from: NodeId;
  readonly seq: number;
}

/**
 * ReadIndex bookkeeping on the leader (thesis §6.4). Each read request opens a new heartbeat
 * round numbered `seq`; every heartbeat carries the newest round number and followers echo it.
 * A read is safe once a majority has echoed its round or a later one: they all still
 * recognised this leader after the read arrived, so no newer leader can have committed
 * anything the read would miss.
 */
export class ReadOnly {
  seq = 0;
  private pending: PendingRead[] = [];
  private readonly acks = new Map<NodeId, number>();

  add(ctx: string, index: number, from: NodeId): void {
    this.seq++;
    this.pending.push({ ctx, index, from, seq: this.seq });
  }

  ack(from: NodeId, seq: number): void {
    if (seq > (this.acks.get(from) ?? 0)) this.acks.set(from, Math.min(seq, this.seq));
  }

  /** Removes and returns the reads a majority of `voters` has confirmed (the leader counts itself). */
  release(voters: ReadonlySet<NodeId>, self: NodeId): PendingRead[] {
    if (this.pending.length === 0) return [];
    const confirmed = quorumIndex(voters, (id) => (id === self ? this.seq : (this.acks.get(id) ?? 0)));
    let n = 0;
    while (n < this.pending.length && this.pending[n]!.seq <= confirmed) n++;
    if (n === 0) return [];
    const released = this.pending.slice(0, n);
    this.pending = this.pending.slice(n);
    return released;
  }

  pendingCount(): number {
    return this.pending.length;
  }

  reset(): void {
    this.seq = 0;
    this.pending = [];
    this.acks.clear();
  }
}

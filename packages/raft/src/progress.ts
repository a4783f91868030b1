import type { ProgressState, Snapshot } from './types.ts';

/**
 * A bounded window of append messages sent to one follower and not yet acknowledged, each
 * remembered by the last index it carried. A full window pauses replication to that follower,
 * so a slow follower costs the leader a fixed amount of memory (etcd's tracker.Inflights).
 */
export class Inflights {
  private readonly buffer: number[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.buffer = new Array<number>(capacity).fill(0);
  }

  add(lastIndex: number): void {
    if (this.full()) throw new Error('Inflights.add on a full window (caller must check full())');
    this.buffer[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every message whose entries are all at or below `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Forgets the oldest message, making room for one more (see Raft's heartbeat handling). */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  full(): boolean {
    return this.count === this.capacity;
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

/** Where the leader is in sending an InstallSnapshot to one follower, chunk by chunk. */
export interface SnapshotTransfer {
  readonly snapshot: Snapshot;
  /** Bytes the follower has confirmed; the next chunk starts here. */
  acked: number;
}

/**
 * The leader's view of one follower's log (Figure 2's nextIndex/matchIndex, with etcd's flow
 * control). Invariant: 0 <= match < next. `match` only grows, except when the follower shows
 * it lost acknowledged entries (lostEntries).
 * - probe: the follower's position is unknown; at most one append per heartbeat interval.
 * - replicate: the position is known; appends are pipelined up to the Inflights window.
 * - snapshot: the follower needs a snapshot; appends wait until it is installed.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent and no reply has come since. */
  probeSent = false;
  /** Heard from since the last check-quorum round (thesis §6.2). */
  recentActive = false;
  isLearner: boolean;
  snapshotTransfer: SnapshotTransfer | undefined;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.snapshotTransfer = undefined;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot's index.
    const pendingSnapshot = this.snapshotTransfer?.snapshot.metadata.index ?? 0;
    const wasSnapshot = this.state === 'snapshot';
    this.resetState('probe');
    this.next = wasSnapshot ? Math.max(this.match + 1, pendingSnapshot + 1) : this.match + 1;
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState('snapshot');
    this.snapshotTransfer = { snapshot, acked: 0 };
  }

  /** Replication is paused: the leader must not send appends to this follower now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Records that an append carrying entries up to `lastIndex` (maybe none) was sent. */
  sentEntries(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** A successful reply up to `index`; returns whether it told the leader anything new. */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    this.probeSent = false;
    return true;
  }

  /**
   * The follower reported a log that ends at `lastIndex`, before `match`: it lost entries it
   * had acknowledged. Forget the match (it is counted towards no commit until it acknowledges
   * again) and probe from its last entry. This is the one way `match` moves back.
   */
  lostEntries(lastIndex: number): void {
    this.resetState('probe');
    this.match = 0;
    this.next = lastIndex + 1;
  }

  /**
   * A rejection of the append after `rejected`; `matchHint` is the follower's hint of where
   * its log can match. Returns false when the rejection is stale (an older probe's reply).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Appends are pipelined: a rejection at or below match answers an old message.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}

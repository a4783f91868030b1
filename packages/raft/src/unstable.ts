import type { Entry, Snapshot } from './types.ts';

/**
 * The tail of the log the host has not yet persisted, and possibly a snapshot received from
 * the leader that it has not yet installed (etcd's `unstable`).
 * Invariant: `entries[i].index === offset + i`; when `snapshot` is set, `offset` is its
 * index + 1. `offsetInProgress` (offset <= offsetInProgress <= offset + entries.length) marks
 * entries already handed to the host in a Ready that has not been advanced.
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      const snap = this.snapshot;
      return snap !== undefined && snap.metadata.index === index ? snap.metadata.term : undefined;
    }
    const entry = this.entries[index - this.offset];
    return entry?.term;
  }

  /** Entries not yet handed to the host. */
  nextEntries(): Entry[] {
    const start = this.offsetInProgress - this.offset;
    return start >= this.entries.length ? [] : this.entries.slice(start);
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  nextSnapshot(): Snapshot | undefined {
    return this.snapshotInProgress ? undefined : this.snapshot;
  }

  /** The host took everything pending into a Ready. */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /**
   * Entries up to `index` are durable. Ignored when the entry at `index` changed term since
   * (a newer leader replaced it while the write was in flight); the newer entry stays unstable.
   */
  stableTo(index: number, term: number): void {
    if (index < this.offset || this.maybeTerm(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /** Appends `entries`, replacing whatever the log held from `entries[0].index` on (§5.3). */
  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const e of entries) this.entries.push(e);
    } else if (from <= this.offset) {
      // Replaces the unstable tail and (once persisted) the stored entries from `from` on.
      this.offset = from;
      this.offsetInProgress = from;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(entries);
      this.offsetInProgress = Math.min(this.offsetInProgress, from);
    }
  }

  /** Entries in [lo, hi); the caller guarantees offset <= lo <= hi <= last + 1. */
  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

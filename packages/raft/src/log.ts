import { RaftError, isRaftError } from './errors.ts';
import { limitSize, type Storage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';
import { Unstable } from './unstable.ts';

/**
 * The node's view of the log: what the host has persisted (Storage) followed by what it has
 * not yet (Unstable), plus the commit and apply cursors.
 * Invariant: applied <= applying <= committed <= lastIndex().
 */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  committed: number;
  /** Highest index handed to the host for applying in a Ready not yet advanced. */
  applying: number;
  applied: number;
  private readonly maxApplyingBytes: number;

  constructor(storage: Storage, maxApplyingBytes: number) {
    this.storage = storage;
    this.maxApplyingBytes = maxApplyingBytes;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // The host restores its state machine from the latest snapshot, so that is where applying
    // resumes; entries kept before it (compaction may keep a tail) are not applied again.
    const restart = Math.max(first - 1, storage.snapshot().metadata.index);
    this.committed = restart;
    this.applying = restart;
    this.applied = restart;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, or undefined when it is compacted or beyond the log. */
  term(index: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    try {
      return this.storage.term(index);
    } catch (err) {
      if (isRaftError(err, 'compacted') || isRaftError(err, 'unavailable')) return undefined;
      throw err;
    }
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a log is at least as up to date as ours if its last term is newer, or equal and as long. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The first entry of `entries` that is not already in the log with the same term (the
   * point where a follower must truncate, §5.3), or 0 when all are present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 when compacted).
   * Used on both sides of the fast back-off: one round trip skips every entry of a term the
   * other side cannot have.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  /**
   * The follower side of AppendEntries (§5.3): when the entry before `entries` matches,
   * truncate at the first conflict, append the rest, advance the commit index, and return the
   * last index now known to match the leader's log; undefined when the consistency check fails.
   * Throws before changing anything if the leader would overwrite a committed entry.
   */
  maybeAppend(index: number, logTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new RaftError(
          'invalid-message',
          `append would overwrite committed entry ${conflict} (committed ${this.committed})`,
        );
      }
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    if (entries[0]!.index - 1 < this.committed) {
      throw new RaftError('invalid-message', `append at ${entries[0]!.index} is below the commit index ${this.committed}`);
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new RaftError('invalid-message', `commit index ${index} is beyond the log end ${this.lastIndex()}`);
    }
    this.committed = index;
  }

  /** Entries from `lo` to the end of the log, limited to `maxBytes`; throws `compacted`. */
  entriesFrom(lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** Entries in [lo, hi) limited to `maxBytes`; throws RaftError `compacted` below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) {
      throw new RaftError('compacted', `entry ${lo} is compacted (log starts at ${this.firstIndex()})`);
    }
    if (lo >= hi) return [];
    const unstableOffset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < unstableOffset) {
      result = this.storage.entries(lo, Math.min(hi, unstableOffset), maxBytes);
      // The storage stopped short (size limit): what it gave is the answer.
      if (result.length < Math.min(hi, unstableOffset) - lo) return result;
    }
    if (hi > unstableOffset) {
      const tail = this.unstable.slice(Math.max(lo, unstableOffset), hi);
      result = result.length === 0 ? tail : result.concat(tail);
    }
    return limitSize(result, maxBytes);
  }

  /** Whether committed entries are waiting to be handed to the host. */
  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot !== undefined) return false;
    return this.committed > this.applying && this.applying + 1 >= this.firstIndex();
  }

  /**
   * Committed entries not yet handed out. They may include entries in the same Ready's
   * `entries`: the host persists before it applies, so that is safe (etcd's synchronous mode).
   */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applying + 1, this.committed + 1, this.maxApplyingBytes);
  }

  acceptApplying(index: number): void {
    this.applying = index;
  }

  appliedTo(index: number): void {
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    this.unstable.stableSnapshotTo(index);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot from the leader (§7): everything in it is committed. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }
}

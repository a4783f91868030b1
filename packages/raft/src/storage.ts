import { RaftError } from './errors.ts';
import type { ConfState, Entry, HardState, NodeId, Snapshot, SnapshotMetadata } from './types.ts';
import { NONE } from './types.ts';

/**
 * The log as the core reads it. The host owns it: it appends what a Ready says to persist,
 * installs snapshots and compacts. The core only reads (as etcd's raft.Storage).
 */
export interface Storage {
  /** The hard state and the membership as of the snapshot, read once at start. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), the first always included, then as many as fit in `maxBytes`.
   * Throws RaftError `compacted` below firstIndex and `unavailable` beyond lastIndex.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The term of the entry at `index`; firstIndex-1 (the compaction point) is answerable. */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; its index may lag firstIndex-1 when entries were kept. */
  snapshot(): Snapshot;
}

const ENTRY_OVERHEAD = 24;

/** Approximate encoded size of an entry, for batching entries into messages (§5.3). */
export function entrySize(entry: Entry): number {
  return entry.type === 'normal' ? entry.data.byteLength + ENTRY_OVERHEAD : ENTRY_OVERHEAD * 2;
}

/** The longest prefix of `entries` within `maxBytes`, never fewer than one entry. */
export function limitSize<T extends Entry>(entries: T[], maxBytes: number): T[] {
  if (entries.length <= 1 || maxBytes >= Number.MAX_SAFE_INTEGER) return entries;
  let size = entrySize(entries[0]!);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySize(entries[n]!);
    if (size > maxBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };
export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };
const EMPTY_SNAPSHOT: Snapshot = {
  metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
  data: new Uint8Array(0),
};

/**
 * What a brand-new cluster's founding members all start with: one committed `addVoter` entry
 * per founder at term 1 (as etcd's Bootstrap). Because the membership is in the log, a member
 * that joins later learns the founders by replaying it, like any other change.
 */
export function bootstrapState(voters: readonly NodeId[]): { hardState: HardState; entries: Entry[] } {
  if (voters.length === 0) throw new RaftError('invalid-config', 'a cluster needs at least one voter');
  if (new Set(voters).size !== voters.length) {
    throw new RaftError('invalid-config', `founding voters must be distinct, got ${voters.join(', ')}`);
  }
  const entries: Entry[] = voters.map((nodeId, i) => ({
    index: i + 1,
    term: 1,
    type: 'confChange',
    change: { type: 'addVoter', nodeId },
  }));
  return { hardState: { term: 1, vote: NONE, commit: voters.length }, entries };
}

/**
 * The in-memory Storage. The simulator uses it as a node's "disk"; a real host keeps it as the
 * read cache in front of its durable store (etcd's MemoryStorage plays the same two roles).
 * Invariant: `entries[i].index === offset + 1 + i`, and `offset`/`offsetTerm` describe the
 * last compacted entry.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = EMPTY_SNAPSHOT;
  private offset = 0;
  private offsetTerm = 0;
  private ents: Entry[] = [];

  /** A storage holding the founding state of a new cluster (see bootstrapState). */
  static bootstrap(voters: readonly NodeId[]): MemoryStorage {
    const storage = new MemoryStorage();
    const { hardState, entries } = bootstrapState(voters);
    storage.append(entries);
    storage.setHardState(hardState);
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) {
      throw new RaftError('compacted', `entry ${lo} is compacted (log starts after ${this.offset})`);
    }
    if (hi > this.lastIndex() + 1) {
      throw new RaftError('unavailable', `entries up to ${hi - 1} requested, log ends at ${this.lastIndex()}`);
    }
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - this.offset - 1, hi - this.offset - 1), maxBytes);
  }

  term(index: number): number {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset) {
      throw new RaftError('compacted', `entry ${index} is compacted (log starts after ${this.offset})`);
    }
    const entry = this.ents[index - this.offset - 1];
    if (entry === undefined) {
      throw new RaftError('unavailable', `entry ${index} is beyond the log end ${this.lastIndex()}`);
    }
    return entry.term;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snap.metadata.index) {
      throw new RaftError(
        'snapshot-out-of-date',
        `snapshot at ${snapshot.metadata.index} is not newer than the one held at ${this.snap.metadata.index}`,
      );
    }
    this.snap = snapshot;
    this.offset = snapshot.metadata.index;
    this.offsetTerm = snapshot.metadata.term;
    this.ents = [];
  }

  /** Records the state machine's image at `index` (which the host has applied). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) {
      throw new RaftError('snapshot-out-of-date', `a snapshot at ${this.snap.metadata.index} already covers ${index}`);
    }
    if (index > this.lastIndex()) {
      throw new RaftError('unavailable', `cannot snapshot at ${index}: the log ends at ${this.lastIndex()}`);
    }
    const metadata: SnapshotMetadata = { index, term: this.term(index), confState };
    this.snap = { metadata, data };
    return this.snap;
  }

  /** Discards entries up to and including `index`; they must be covered by a snapshot. */
  compact(index: number): void {
    if (index <= this.offset) return;
    if (index > this.snap.metadata.index) {
      throw new RaftError('invalid-state', `cannot compact to ${index}: the snapshot only covers ${this.snap.metadata.index}`);
    }
    this.offsetTerm = this.term(index);
    this.ents = this.ents.slice(index - this.offset);
    this.offset = index;
  }

  /**
   * Appends entries from a Ready. Entries at or below the compaction point are already covered
   * and skipped; an entry at an index the log already has replaces it and everything after.
   */
  append(entries: readonly Entry[]): void {
    let first = 0;
    while (first < entries.length && entries[first]!.index <= this.offset) first++;
    if (first === entries.length) return;
    const start = entries[first]!.index;
    if (start > this.lastIndex() + 1) {
      throw new RaftError('invalid-state', `append at ${start} would leave a gap after ${this.lastIndex()}`);
    }
    this.ents.length = start - this.offset - 1;
    for (let i = first; i < entries.length; i++) this.ents.push(entries[i]!);
  }
}

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import type { Entry, HardState, Snapshot } from '@flotilla/raft';
import { KvError } from './errors.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

const HARD_STATE = 'hardstate';
const SNAPSHOT = 'snapshot';
/** Entry keys sort by index: "e" and 16 zero-padded digits. */
function entryKey(index: number): string {
  return `e${String(index).padStart(16, '0')}`;
}

export interface LoadedState {
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  /** The log after the snapshot, in order, contiguous. */
  readonly entries: Entry[];
}

/**
 * The durable half of a master's Raft state, in level: the hard state, the log and the latest
 * snapshot. Writes the host must not acknowledge before they are on disk go through one
 * batch with `sync: true` (an fsync), so many proposals share one fsync (group commit).
 */
export class DiskLog {
  /** Index range of the entries on disk: [first, last]; empty when last < first. */
  private first = 1;
  private last = 0;

  private constructor(private readonly db: Level<string, Uint8Array>) {}

  /** Opens (creating) the log in `dir`/raft. Throws KvError `unavailable` with the reason. */
  static async open(dir: string): Promise<DiskLog> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new KvError('unavailable', `cannot create the data directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const db = new Level<string, Uint8Array>(join(dir, 'raft'), { valueEncoding: 'view' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      if (/lock/i.test(cause)) throw new KvError('unavailable', `the data directory ${dir} is in use by another running master`);
      throw new KvError('unavailable', `cannot open the data directory ${dir}: ${cause}`);
    }
    return new DiskLog(db);
  }

  /** Reads everything back after a restart. */
  async load(): Promise<LoadedState> {
    const hs = await this.db.get(HARD_STATE);
    const sn = await this.db.get(SNAPSHOT);
    const hardState = hs === undefined ? undefined : (packr.unpack(hs) as HardState);
    const snapshot = sn === undefined ? undefined : (packr.unpack(sn) as Snapshot);
    const after = snapshot?.metadata.index ?? 0;
    const entries: Entry[] = [];
    for await (const [key, value] of this.db.iterator({ gt: entryKey(after), lt: 'f' })) {
      const e = packr.unpack(value) as Entry;
      if (e.index !== after + entries.length + 1) throw new KvError('unavailable', `the stored log has a gap before entry ${e.index} (key ${key}); the data directory is damaged`);
      entries.push(e);
    }
    // Entries a snapshot covers (kept for lagging followers before the restart) go now.
    if (after > 0) await this.db.clear({ gte: entryKey(0), lte: entryKey(after) });
    this.first = after + 1;
    this.last = after + entries.length;
    return { hardState, snapshot, entries };
  }

  /**
   * Persists a Ready's hard state, entries (replacing any conflicting suffix) and snapshot in
   * one atomic batch; with `sync` it returns only once the batch is on stable storage.
   */
  async save(hardState: HardState | undefined, entries: readonly Entry[], snapshot: Snapshot | undefined, sync: boolean): Promise<void> {
    const ops: ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[] = [];
    if (snapshot !== undefined) {
      // A snapshot from the leader replaces the whole log.
      for (let i = this.first; i <= this.last; i++) ops.push({ type: 'del', key: entryKey(i) });
      ops.push({ type: 'put', key: SNAPSHOT, value: packr.pack(snapshot) });
      this.first = snapshot.metadata.index + 1;
      this.last = snapshot.metadata.index;
    }
    if (entries.length > 0) {
      const from = entries[0]!.index;
      const lastNew = entries[entries.length - 1]!.index;
      for (const e of entries) ops.push({ type: 'put', key: entryKey(e.index), value: packr.pack(e) });
      // Entries past the new ones belonged to a deposed leader's suffix (§5.3).
      for (let i = lastNew + 1; i <= this.last; i++) ops.push({ type: 'del', key: entryKey(i) });
      if (from < this.first) this.first = from;
      this.last = lastNew;
    }
    if (hardState !== undefined) ops.push({ type: 'put', key: HARD_STATE, value: packr.pack(hardState) });
    if (ops.length > 0) await this.db.batch(ops, { sync });
  }

  /** Stores a snapshot the host took (for log compaction), synced. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.db.put(SNAPSHOT, packr.pack(snapshot), { sync: true });
  }

  /** Deletes entries up to and including `index` (already covered by a saved snapshot). */
  async compact(index: number): Promise<void> {
    if (index < this.first) return;
    const upTo = Math.min(index, this.last);
    await this.db.clear({ gte: entryKey(this.first), lte: entryKey(upTo) });
    this.first = upTo + 1;
  }

  /** Entries on disk (for status: the log size). */
  size(): number {
    return Math.max(0, this.last - this.first + 1);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

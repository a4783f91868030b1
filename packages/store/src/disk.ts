import { closeSync, existsSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import type { Entry, HardState, Snapshot } from '@flotilla/raft';
import { describeHolder, isDirLockedError, lockDir, type DirLock } from '@flotilla/wire';
import { KvError, isKvError } from './errors.ts';
import { seal, unseal } from './integrity.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** The kind byte of a sealed record on disk (see integrity.ts). */
const RECORD = 0;

const HARD_STATE = 'hardstate';
const SNAPSHOT = 'snapshot';
/**
 * A snapshot this master took is stored as pieces of this size under "d<index>/<n>" (before the
 * entries' "e…" keys and the records' "f"…), and the SNAPSHOT record points at them: level
 * writes a value on the event loop, 1.0–1.5 s for one 70 MB value, and each piece is a short
 * write of its own. One the leader sent is stored whole, in the batch that replaces the log.
 */
const SNAPSHOT_PIECE = 512 * 1024;
const pieceKey = (index: number, n: number): string => `d${String(index).padStart(16, '0')}/${String(n).padStart(8, '0')}`;
/** Entry keys sort by index: "e" and 16 zero-padded digits. */
function entryKey(index: number): string {
  return `e${String(index).padStart(16, '0')}`;
}

export interface LoadedState {
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  /** The log after the snapshot, in order, contiguous. */
  readonly entries: Entry[];
  /** Other records (the data directory's identity, its peers), by key. */
  readonly records: ReadonlyMap<string, unknown>;
}

type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

/**
 * What the log held after its last synced write: its hard state and last entry. Kept outside
 * LevelDB, in `raft.mark`, because LevelDB replays a write-ahead log that lost its tail (cut,
 * or a disk that dropped synced writes) without a word, and a master that came back with less
 * log, or an older vote, than it had acknowledged could vote a committed write away. Written
 * after each synced batch returns (to the page cache, not synced again: after a power loss it
 * can only be older than the log, never newer), in two alternating checksummed slots, so a torn
 * write leaves the other.
 */
interface Mark {
  readonly seq: number;
  readonly term: number;
  readonly vote: string;
  readonly commit: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

const MARK_SLOT = 512;

/**
 * The durable half of a master's Raft state, in level: the hard state, the log, the latest
 * snapshot, and a few records of the host's (its identity). Writes the host must not
 * acknowledge before they are on disk go through one batch with `sync: true` (an fsync), so
 * many proposals share one fsync (group commit).
 *
 * Every value is sealed with a checksum (integrity.ts) and checked whenever it is read back,
 * with the key it was stored under: LevelDB, as level opens it, does not verify its own block
 * checksums on reads, so a changed byte in a table file would otherwise come back as data.
 */
export class DiskLog {
  /** Index range of the entries on disk: [first, last]; empty when last < first. */
  private first = 1;
  private last = 0;
  /** Bytes of entries written since the last snapshot (for snapshots by size). */
  private entryBytes = 0;
  /** What is on disk as of the last write, and the mark last written. */
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private lastTerm = 0;
  private mark: Mark | undefined;
  /** Each host record's writes, one after the other (level may reorder concurrent puts). */
  private readonly recordWrites = new Map<string, Promise<void>>();

  private constructor(
    private readonly dir: string,
    private db: Level<string, Uint8Array>,
    private readonly markFd: number,
    private readonly lock: DirLock,
  ) {}

  /** The level database's directory, for messages. */
  get path(): string {
    return join(this.dir, 'raft');
  }

  /** Opens (creating) the log in `dir`/raft. Throws KvError with the reason. */
  static async open(dir: string): Promise<DiskLog> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      if (isDiskFull(err)) throw new KvError('unavailable', `cannot create the data directory ${dir}: its disk is full`);
      throw new KvError('unavailable', `cannot create the data directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // The directory's lock comes before anything reads or writes in it, and is held until
    // close(): level's own LOCK is released while recover() reopens the database.
    const lock = lockDataDir(dir);
    let db: Level<string, Uint8Array>;
    try {
      db = await openDb(dir);
    } catch (err) {
      lock.release();
      throw err;
    }
    const markPath = join(dir, 'raft.mark');
    try {
      if (!existsSync(markPath)) writeFileSync(markPath, Buffer.alloc(2 * MARK_SLOT));
      return new DiskLog(dir, db, openSync(markPath, 'r+'), lock);
    } catch (err) {
      await db.close().catch(() => undefined);
      lock.release();
      if (isDiskFull(err)) throw new KvError('unavailable', `cannot open the data directory ${dir}: its disk is full`);
      throw new KvError('unavailable', `cannot open ${markPath}: ${(err as Error).message}`);
    }
  }

  /** Reads everything back after a restart, checking every record. Throws KvError `corrupt` or `wrong-data-dir`. */
  async load(): Promise<LoadedState> {
    const records = new Map<string, unknown>();
    let hardState: HardState | undefined;
    let snapshot: Snapshot | undefined;
    const entries: Entry[] = [];
    let after = 0;
    try {
      // Entries are "e…"; every other record sorts after them ("hardstate", "identity", …).
      for await (const [key, value] of this.db.iterator({ gte: 'f' })) records.set(key, this.decode(key, value));
      hardState = records.get(HARD_STATE) as HardState | undefined;
      snapshot = await this.snapshotFrom(records.get(SNAPSHOT));
      records.delete(HARD_STATE);
      records.delete(SNAPSHOT);
      after = snapshot?.metadata.index ?? 0;
      for await (const [key, value] of this.db.iterator({ gt: entryKey(after), lt: 'f' })) {
        const e = this.decode(key, value) as Entry;
        if (e.index !== Number(key.slice(1))) throw this.damaged(`the record ${key} holds entry ${String(e.index)}`);
        if (e.index !== after + entries.length + 1) throw this.damaged(`the stored log has a gap before entry ${e.index} (key ${key})`);
        entries.push(e);
      }
    } catch (err) {
      if (isKvError(err)) throw err;
      throw this.damaged(levelCause(err));
    }
    this.checkMark(hardState, snapshot, entries);
    // Entries a snapshot covers (kept for lagging followers before the restart) go now. Not
    // needed for correctness (they are never read again), so a full disk does not stop us.
    if (after > 0) await this.db.clear({ gte: entryKey(0), lte: entryKey(after) }).catch(() => undefined);
    this.first = after + 1;
    this.last = after + entries.length;
    this.hardState = hardState ?? this.hardState;
    this.lastTerm = entries[entries.length - 1]?.term ?? snapshot?.metadata.term ?? 0;
    return { hardState, snapshot, entries, records };
  }

  /** Refuses a log that ends before, or a hard state older than, what the mark says was synced. */
  private checkMark(hardState: HardState | undefined, snapshot: Snapshot | undefined, entries: readonly Entry[]): void {
    this.mark = readMark(this.markFd);
    const mark = this.mark;
    if (mark === undefined) return;
    const after = snapshot?.metadata.index ?? 0;
    const last = after + entries.length;
    const termAt = (i: number): number | undefined => (i === after ? (snapshot?.metadata.term ?? 0) : entries[i - after - 1]?.term);
    if (mark.lastIndex > last) throw this.damaged(`its write-ahead log lost records it had synced: the log ends at entry ${last}, but it had written entries up to ${mark.lastIndex}`);
    if (mark.lastIndex >= after && termAt(mark.lastIndex) !== mark.lastTerm) throw this.damaged(`entry ${mark.lastIndex} is of term ${termAt(mark.lastIndex)}, but it had written it in term ${mark.lastTerm}`);
    const hs = hardState ?? { term: 0, vote: '', commit: 0 };
    if (hs.term < mark.term || (hs.term === mark.term && mark.vote !== '' && hs.vote !== mark.vote) || hs.commit < mark.commit) {
      throw this.damaged(`its hard state (term ${hs.term}, vote "${hs.vote}", commit ${hs.commit}) is older than what it had synced (term ${mark.term}, vote "${mark.vote}", commit ${mark.commit}), so it could vote twice`);
    }
  }

  /**
   * Persists a Ready's hard state, entries (replacing any conflicting suffix) and snapshot in
   * one atomic batch; with `sync` it returns only once the batch is on stable storage. If the
   * write fails nothing here changes: the caller may retry the same call (after recover()).
   */
  async save(hardState: HardState | undefined, entries: readonly Entry[], snapshot: Snapshot | undefined, sync: boolean): Promise<void> {
    const ops: Op[] = [];
    let first = this.first;
    let last = this.last;
    let bytes = this.entryBytes;
    if (snapshot !== undefined) {
      // A snapshot from the leader replaces the whole log.
      for (let i = first; i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
      ops.push({ type: 'put', key: SNAPSHOT, value: encode(snapshot) });
      first = snapshot.metadata.index + 1;
      last = snapshot.metadata.index;
      bytes = 0;
    }
    if (entries.length > 0) {
      const from = entries[0]!.index;
      const lastNew = entries[entries.length - 1]!.index;
      for (const e of entries) {
        const value = encode(e);
        bytes += value.byteLength;
        ops.push({ type: 'put', key: entryKey(e.index), value });
      }
      // Entries past the new ones belonged to a deposed leader's suffix (§5.3).
      for (let i = lastNew + 1; i <= last; i++) ops.push({ type: 'del', key: entryKey(i) });
      if (from < first) first = from;
      last = lastNew;
    }
    if (hardState !== undefined) ops.push({ type: 'put', key: HARD_STATE, value: encode(hardState) });
    if (ops.length > 0) await this.db.batch(ops, { sync });
    // The pieces of a snapshot this master took are no longer pointed at.
    if (snapshot !== undefined) await this.db.clear({ gte: 'd', lt: 'e' }).catch(() => undefined);
    this.first = first;
    this.last = last;
    this.entryBytes = bytes;
    if (hardState !== undefined) this.hardState = hardState;
    if (entries.length > 0) this.lastTerm = entries[entries.length - 1]!.term;
    else if (snapshot !== undefined) this.lastTerm = snapshot.metadata.term;
    // A sync covers every earlier write too: what is in memory now is on disk.
    if (sync && ops.length > 0) this.writeMark();
  }

  private writeMark(): void {
    const mark: Mark = { seq: (this.mark?.seq ?? 0) + 1, term: this.hardState.term, vote: this.hardState.vote, commit: this.hardState.commit, lastIndex: this.last, lastTerm: this.lastTerm };
    const json = Buffer.from(JSON.stringify(mark));
    const slot = Buffer.alloc(MARK_SLOT);
    slot.writeUInt16BE(json.length, 4);
    json.copy(slot, 6);
    slot.writeUInt32BE(crc32(slot.subarray(4)), 0);
    writeSync(this.markFd, slot, 0, MARK_SLOT, (mark.seq % 2) * MARK_SLOT);
    this.mark = mark;
  }

  /**
   * Stores a snapshot the host took (for log compaction), synced: writeSnapshotPieces, then
   * commitSnapshot.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.writeSnapshotPieces(snapshot.metadata.index, snapshot.data);
    await this.commitSnapshot(snapshot.metadata, snapshot.data.byteLength);
  }

  /**
   * Writes a snapshot's data as pieces, each a write of its own (the event loop runs between
   * them), under keys nothing else reads until commitSnapshot points at them: so this may run
   * while the log is written, in the background.
   */
  async writeSnapshotPieces(index: number, data: Uint8Array): Promise<void> {
    for (let n = 0; n * SNAPSHOT_PIECE < data.byteLength; n++) await this.db.put(pieceKey(index, n), seal(RECORD, data.subarray(n * SNAPSHOT_PIECE, (n + 1) * SNAPSHOT_PIECE)));
  }

  /**
   * Makes the snapshot whose pieces were written the stored one: the record that points at
   * them, synced (which makes the pieces durable too: level's log is written in order, and
   * each piece's write had completed); then the pieces of the one before go.
   */
  async commitSnapshot(metadata: Snapshot['metadata'], bytes: number): Promise<void> {
    const pieces = Math.ceil(bytes / SNAPSHOT_PIECE);
    await this.db.put(SNAPSHOT, encode({ metadata, pieces, bytes }), { sync: true });
    this.entryBytes = 0;
    await this.db.clear({ gte: 'd', lt: pieceKey(metadata.index, 0) }).catch(() => undefined);
  }

  /** The snapshot a SNAPSHOT record holds (one the leader sent) or points at (one this master took). */
  private async snapshotFrom(record: unknown): Promise<Snapshot | undefined> {
    if (record === undefined) return undefined;
    const r = record as { metadata: Snapshot['metadata']; data?: Uint8Array; pieces?: number; bytes?: number };
    if (r.data !== undefined) return { metadata: r.metadata, data: r.data };
    if (typeof r.pieces !== 'number' || typeof r.bytes !== 'number') throw this.damaged('the snapshot record holds neither a snapshot nor its pieces');
    const data = new Uint8Array(r.bytes);
    let at = 0;
    for (let n = 0; n < r.pieces; n++) {
      const key = pieceKey(r.metadata.index, n);
      let value: Uint8Array | undefined;
      try {
        value = await this.db.get(key);
      } catch {
        value = undefined;
      }
      if (value === undefined) throw this.damaged(`piece ${n} of the snapshot at ${r.metadata.index} is missing`);
      const u = unseal(value);
      if (u === 'unsealed' || u === 'damaged' || u.kind !== RECORD) throw this.damaged(`the record ${key} (piece ${n} of the snapshot at ${r.metadata.index}) fails its checksum`);
      if (at + u.payload.byteLength > data.byteLength) throw this.damaged(`the pieces of the snapshot at ${r.metadata.index} hold more than its ${r.bytes} bytes`);
      data.set(u.payload, at);
      at += u.payload.byteLength;
    }
    if (at !== data.byteLength) throw this.damaged(`the pieces of the snapshot at ${r.metadata.index} hold ${at} of its ${r.bytes} bytes`);
    return { metadata: r.metadata, data };
  }

  /** Deletes entries up to and including `index` (already covered by a saved snapshot). */
  async compact(index: number): Promise<void> {
    if (index < this.first) return;
    const upTo = Math.min(index, this.last);
    await this.db.clear({ gte: entryKey(this.first), lte: entryKey(upTo) });
    this.first = upTo + 1;
  }

  /**
   * Stores one of the host's own records, synced. Writes of one key go one after the other, in
   * the order they were asked for: level runs puts on several threads, so two at once could land
   * in either order and leave the older value.
   */
  writeRecord(key: string, value: unknown): Promise<void> {
    if (key.startsWith('e') || key === HARD_STATE || key === SNAPSHOT) return Promise.reject(new Error(`${key} is not a host record key`));
    const bytes = encode(value);
    const previous = this.recordWrites.get(key) ?? Promise.resolve();
    const write = previous.catch(() => undefined).then(() => this.db.put(key, bytes, { sync: true }));
    this.recordWrites.set(key, write);
    const forget = (): void => {
      if (this.recordWrites.get(key) === write) this.recordWrites.delete(key);
    };
    write.then(forget, forget);
    return write;
  }

  /**
   * After a write failed (the disk was full), reopens the database, which drops LevelDB's
   * memory of the failure and replays what really is on disk, and checks that every entry this
   * log had confirmed is still there. Throws what reopening throws (retry while the disk is
   * full), or KvError `corrupt` if confirmed entries are gone.
   */
  async recover(): Promise<void> {
    await this.db.close().catch(() => undefined);
    this.db = await openDb(this.dir);
    let last = this.first - 1;
    for await (const key of this.db.keys({ gte: entryKey(this.first), lt: 'f' })) {
      if (Number(key.slice(1)) !== last + 1) break;
      last++;
    }
    if (last < this.last) throw this.damaged(`after a failed write it holds the log only up to entry ${last}, but entries up to ${this.last} had been written and confirmed`);
  }

  /** Entries held on disk (for status: the log size). */
  size(): number {
    return Math.max(0, this.last - this.first + 1);
  }

  /** Bytes of entries written since the last snapshot. */
  bytesSinceSnapshot(): number {
    return this.entryBytes;
  }

  async close(): Promise<void> {
    try {
      await Promise.allSettled([...this.recordWrites.values()]);
      await this.db.close();
      closeSync(this.markFd);
    } finally {
      this.lock.release();
    }
  }

  private decode(key: string, value: Uint8Array): unknown {
    const r = unseal(value);
    if (r === 'unsealed') {
      throw new KvError(
        'wrong-data-dir',
        `the data directory ${this.dir} was written by an earlier version of Flotilla, whose records carry no checksums; start this master from an empty data directory (flotilla up --fresh starts the whole cluster from empty), or run the earlier version`,
      );
    }
    if (r === 'damaged' || r.kind !== RECORD) throw this.damaged(`the record ${key}${key.startsWith('e') ? ` (log entry ${Number(key.slice(1))})` : ''} fails its checksum`);
    try {
      return packr.unpack(r.payload);
    } catch {
      throw this.damaged(`the record ${key} does not decode`);
    }
  }

  private damaged(what: string): KvError {
    return damagedError(this.path, what);
  }
}

/**
 * The one sentence a master whose data is damaged stops with: where, what, and what to do.
 * It never serves from such a directory.
 */
export function damagedError(path: string, what: string): KvError {
  return new KvError(
    'corrupt',
    `the data directory ${path} is damaged (${what}); this master will not serve from it: remove it from the cluster and add it back with an empty data directory`,
  );
}

/** The newest sound slot of the mark file, or undefined when there is none yet. */
function readMark(fd: number): Mark | undefined {
  const buf = Buffer.alloc(2 * MARK_SLOT);
  readSync(fd, buf, 0, buf.length, 0);
  let best: Mark | undefined;
  for (let i = 0; i < 2; i++) {
    const slot = buf.subarray(i * MARK_SLOT, (i + 1) * MARK_SLOT);
    const len = slot.readUInt16BE(4);
    if (len === 0 || len > MARK_SLOT - 6 || slot.readUInt32BE(0) !== crc32(slot.subarray(4))) continue;
    try {
      const m = JSON.parse(slot.subarray(6, 6 + len).toString()) as Mark;
      if (best === undefined || m.seq > best.seq) best = m;
    } catch {
      // a torn slot: the other one holds
    }
  }
  return best;
}

function encode(value: unknown): Uint8Array {
  return seal(RECORD, packr.pack(value));
}

/** Locks the data directory for this process (see @flotilla/wire's dir-lock), or says who holds it. */
function lockDataDir(dir: string): DirLock {
  try {
    return lockDir(dir, 'flotilla master');
  } catch (err) {
    if (isDirLockedError(err)) {
      if (err.holder === undefined) throw new KvError('unavailable', err.message);
      const what = err.holder.by.startsWith('flotilla master') ? 'another running master' : 'another running process';
      throw new KvError('unavailable', `the data directory ${dir} is in use by ${what}: ${describeHolder(err.holder)}`);
    }
    if (isDiskFull(err)) throw new KvError('unavailable', `cannot lock the data directory ${dir}: its disk is full`);
    throw new KvError('unavailable', `cannot lock the data directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function openDb(dir: string): Promise<Level<string, Uint8Array>> {
  const db = new Level<string, Uint8Array>(join(dir, 'raft'), { valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    const cause = levelCause(err);
    if (/lock/i.test(cause)) throw new KvError('unavailable', `the data directory ${dir} is in use by another running master`);
    if (isDiskFull(err)) throw new KvError('unavailable', `cannot open the data directory ${dir}: its disk is full (${cause})`);
    if (/corrupt|checksum/i.test(cause)) throw damagedError(join(dir, 'raft'), cause);
    throw new KvError('unavailable', `cannot open the data directory ${dir}: ${cause}`);
  }
  return db;
}

function levelCause(err: unknown): string {
  return (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
}

/** Whether a failed write failed because the disk (or the user's quota on it) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  return /no space left on device|disk quota exceeded|its disk is full/i.test(`${(err as Error).message} ${levelCause(err)}`);
}

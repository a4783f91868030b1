// Container log files: where they live, rotation by size, and streaming them to a reader.
//
// Layout: `<dataDir>/pods/<podUid>/<containerName>/<attempt>.log`, one file per run holding
// stdout and stderr interleaved as written (the child gets the file, opened O_APPEND, as both
// fds — so it keeps logging while the agent is down). The run before the latest is kept for
// `previous`; older ones are deleted when a new run is created.
//
// Rotation is copy-truncate, because the child holds the file open and the agent cannot make it
// reopen one: past maxLogBytes (checked every second by the runtime, and before a read) the
// file is copied aside, what was written during the copy is appended, the file is truncated
// right after the read that found its end, and the copy is renamed over `<attempt>.log.1`
// (replacing the one before). O_APPEND makes the child's next write land at the new start.
// Bytes written between that last read and the truncate (microseconds) are lost, as with
// logrotate's copytruncate. A reader sees `.log.1` followed by `.log` as one log; a truncate
// never happens in the middle of a read by this process (see whileReading).
import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { copyFile, open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogOptions, LogSink } from './types.ts';

/** Reads and sends at most this much at a time. */
export const LOG_CHUNK_BYTES = 64 * 1024;
/** How often a follower looks for new bytes. */
const FOLLOW_POLL_MS = 100;

export function containerLogDir(dataDir: string, podUid: string, containerName: string): string {
  return join(dataDir, 'pods', podUid, containerName);
}

export function logFile(dir: string, attempt: number): string {
  return join(dir, `${attempt}.log`);
}

export function rotatedFile(path: string): string {
  return `${path}.1`;
}

/** The attempts that have a log in `dir`, oldest first. */
export function listAttempts(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^(\d+)\.log$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Deletes the logs (and rotated parts) of every attempt in `dir` not in `keep`. */
export function pruneLogs(dir: string, keep: ReadonlySet<number>): void {
  for (const attempt of listAttempts(dir)) {
    if (!keep.has(attempt)) deleteLog(logFile(dir, attempt));
  }
}

/** Deletes one attempt's log and its rotated part. */
export function deleteLog(path: string): void {
  rmSync(path, { force: true });
  rmSync(rotatedFile(path), { force: true });
  rmSync(`${rotatedFile(path)}.tmp`, { force: true });
}

/**
 * Readers in the middle of a read of each log file. A rotation's truncate waits until there are
 * none, so a reader never sees a file shrink (or refill) between its look at the size and its
 * reads. (Rotation and readers live in the same agent process.)
 */
const readers = new Map<string, number>();
const idleWaiters = new Map<string, (() => void)[]>();

/** Runs `read` as one reading session of `path`: no truncate happens until it is done. */
async function whileReading<T>(path: string, read: () => Promise<T>): Promise<T> {
  readers.set(path, (readers.get(path) ?? 0) + 1);
  try {
    return await read();
  } finally {
    const left = readers.get(path)! - 1;
    if (left > 0) {
      readers.set(path, left);
    } else {
      readers.delete(path);
      const waiters = idleWaiters.get(path) ?? [];
      idleWaiters.delete(path);
      for (const wake of waiters) wake();
    }
  }
}

function readersGone(path: string): Promise<void> {
  return new Promise((resolve) => idleWaiters.set(path, [...(idleWaiters.get(path) ?? []), resolve]));
}

/** Copy-truncates `path` if it is larger than `maxBytes`; returns whether it did. */
export async function rotateIfNeeded(path: string, maxBytes: number): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  const rotated = rotatedFile(path);
  const tmp = `${rotated}.tmp`;
  await copyFile(path, tmp);
  while (readers.has(path)) await readersGone(path);
  // From the check above to the truncate nothing yields to the event loop, so no reader starts
  // in between.
  catchUpAndTruncate(path, tmp);
  renameSync(tmp, rotated);
  return true;
}

/**
 * Appends to `copy` what was written to `path` after the bulk copy, then truncates `path` right
 * after the read that found its end: bytes the child writes between that read and the truncate
 * (microseconds) are the only ones lost.
 */
function catchUpAndTruncate(path: string, copy: string): void {
  const src = openSync(path, 'r+');
  const dst = openSync(copy, 'a');
  try {
    const buf = Buffer.allocUnsafe(LOG_CHUNK_BYTES);
    let pos = fstatSync(dst).size;
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, pos);
      if (n === 0) break;
      writeSync(dst, buf, 0, n);
      pos += n;
    }
    ftruncateSync(src, 0);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** What a follower needs to know about the container writing the log. */
export interface LogWriter {
  /** False once the container has exited: the follower sends what is left, then ends. */
  running(): boolean;
}

/** One open file of the log and how much of it belongs to the snapshot being read. */
interface Segment {
  readonly handle: FileHandle;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Opens `.log.1` (if any) and `.log`, oldest first; undefined when there is no log. Call inside a reading session. */
async function openSegments(path: string): Promise<Segment[] | undefined> {
  const segments: Segment[] = [];
  try {
    for (const file of [rotatedFile(path), path]) {
      let handle: FileHandle;
      try {
        handle = await open(file, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (file === path) {
          await Promise.all(segments.map((s) => s.handle.close()));
          return undefined;
        }
        continue;
      }
      const st = await handle.stat();
      segments.push({ handle, size: st.size, mtimeMs: st.mtimeMs });
    }
    return segments;
  } catch (err) {
    await Promise.all(segments.map((s) => s.handle.close().catch(() => undefined)));
    throw err;
  }
}

async function inode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

/**
 * Streams the log at `path` (`.log.1` then `.log`) to `sink` as LogOptions ask: tailLines,
 * limitBytes, sinceSeconds (per file: a file last modified before the cut-off is skipped whole,
 * one that was modified after it is sent whole — the runtime does not timestamp lines), and
 * follow, while `writer` runs. Returns cancel; after cancel the sink hears nothing more.
 */
export function streamLog(path: string, options: LogOptions, sink: LogSink, writer: LogWriter | undefined): () => void {
  let cancelled = false;
  let wake: (() => void) | undefined;
  let remaining = options.limitBytes !== undefined && options.limitBytes > 0 ? options.limitBytes : Infinity;

  /** Sends a chunk within limitBytes; false when the limit is reached (or cancelled). */
  const send = (chunk: Buffer): boolean => {
    if (cancelled) return false;
    const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
    remaining -= part.length;
    if (part.length > 0) sink.data(part);
    return remaining > 0 && !cancelled;
  };

  /** Sends bytes [from, to) of a file; false when sending should stop. */
  const sendRange = async (handle: FileHandle, from: number, to: number): Promise<boolean> => {
    let pos = from;
    while (pos < to) {
      const buf = Buffer.allocUnsafe(Math.min(LOG_CHUNK_BYTES, to - pos));
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return true; // shortened by someone else than the runtime
      pos += bytesRead;
      if (!send(buf.subarray(0, bytesRead))) return false;
    }
    return true;
  };

  /** Sends `.log.1` from `from` on; its inode (to recognise it next time), or false to stop. */
  const sendRotatedTail = async (from: number): Promise<number | undefined | false> => {
    let handle: FileHandle;
    try {
      handle = await open(rotatedFile(path), 'r');
    } catch {
      return undefined;
    }
    try {
      const st = await handle.stat();
      return (await sendRange(handle, from, st.size)) ? st.ino : false;
    } finally {
      await handle.close();
    }
  };

  const sleep = (): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, FOLLOW_POLL_MS);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  const finish = (): void => {
    if (!cancelled) sink.end();
    cancelled = true;
  };

  const run = async (): Promise<void> => {
    let segments: Segment[] | undefined;
    try {
      // What is there now, as one consistent snapshot of `.log.1` + `.log`.
      const more = await whileReading(path, async () => {
        segments = await openSegments(path);
        if (segments === undefined) {
          if (!cancelled) sink.end({ code: 404, message: `the log file ${path} does not exist (the container was removed)` });
          cancelled = true;
          return false;
        }
        const cutoff = options.sinceSeconds !== undefined ? Date.now() - options.sinceSeconds * 1000 : -Infinity;
        const included = segments.filter((s) => s.mtimeMs >= cutoff);
        const start = options.tailLines !== undefined ? await tailStart(included, options.tailLines) : { index: 0, offset: 0 };
        for (let i = start.index; i < included.length; i++) {
          const s = included[i]!;
          if (!(await sendRange(s.handle, i === start.index ? start.offset : 0, s.size))) return false;
        }
        return true;
      });
      if (!more || !options.follow || writer === undefined) return finish();

      const current = segments!.at(-1)!;
      let offset = current.size;
      let knownRotation = segments!.length > 1 ? (await segments![0]!.handle.stat()).ino : undefined;
      for (;;) {
        if (cancelled) return;
        // Asked before looking at the file: if the container had exited by now, everything it
        // wrote is in the file we are about to read.
        const wasRunning = writer.running();
        const outcome = await whileReading(path, async (): Promise<'more' | 'removed' | 'stop'> => {
          const rotatedIno = await inode(rotatedFile(path));
          const now = await current.handle.stat();
          if (now.nlink === 0) return 'removed';
          if ((rotatedIno !== undefined && rotatedIno !== knownRotation) || now.size < offset) {
            // Copy-truncated since the last look: the bytes not sent yet are at the end of the
            // new `.log.1`, and the file starts again from 0.
            const sent = await sendRotatedTail(offset);
            if (sent === false) return 'stop';
            knownRotation = sent;
            offset = 0;
          }
          if (now.size > offset) {
            if (!(await sendRange(current.handle, offset, now.size))) return 'stop';
            offset = now.size;
          }
          return 'more';
        });
        if (outcome !== 'more' || !wasRunning) return finish();
        await sleep();
      }
    } finally {
      await Promise.all((segments ?? []).map((s) => s.handle.close().catch(() => undefined)));
    }
  };

  run().catch((err: unknown) => {
    if (cancelled) return;
    cancelled = true;
    sink.end({ code: 500, message: `cannot read the log ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  });
  return () => {
    cancelled = true;
    wake?.();
  };
}

/**
 * Where the last `lines` lines of the segments start. A newline that ends the very last byte
 * terminates the last line rather than starting an empty one, as `tail -n` counts.
 */
async function tailStart(segments: readonly Segment[], lines: number): Promise<{ index: number; offset: number }> {
  const endOf = { index: segments.length - 1, offset: segments.at(-1)?.size ?? 0 };
  if (lines <= 0 || segments.length === 0) return endOf;
  let seen = 0;
  let last = true;
  const buf = Buffer.allocUnsafe(LOG_CHUNK_BYTES);
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i]!;
    let end = s.size;
    while (end > 0) {
      const from = Math.max(0, end - LOG_CHUNK_BYTES);
      const { bytesRead } = await s.handle.read(buf, 0, end - from, from);
      for (let p = bytesRead - 1; p >= 0; p--) {
        const isLastByte = last;
        last = false;
        if (buf[p] !== 0x0a || isLastByte) continue;
        seen += 1;
        if (seen === lines) return { index: i, offset: from + p + 1 };
      }
      end = from;
    }
  }
  return { index: 0, offset: 0 };
}

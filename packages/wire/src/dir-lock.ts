// One process per data directory. Masters and agents lock their data directory before they
// read or write anything in it, and hold the lock until they stop: a second master on a
// master's directory would write the same Raft log, a second agent on an agent's directory would
// adopt the first one's containers (and stop them when it stops).
//
// etcd, containerd and the kubelet use flock(2), which the kernel releases when the process
// dies. Node has no flock, so the lock is a file, `flotilla.lock`, naming its holder (pid, the
// pid's start time from /proc/<pid>/stat field 22, the boot id, the host): it is created
// complete and atomically with link(2), which fails when the file exists, and a lock whose
// holder is gone (no such process, a zombie, a reused pid, another boot) is stale and taken
// over. Taking over is done by one process at a time (it holds `LOCK.breaking`, created the
// same way), which removes the lock only if it still holds the stale content it judged. A lock on
// another host is never judged stale (its pid cannot be checked from here).
import { closeSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The lock file in a locked data directory. */
export const DIR_LOCK_FILE = 'flotilla.lock';

/** Who holds a data directory, as its lock file says. */
export interface DirLockHolder {
  readonly pid: number;
  /** The holder's parent when it took the lock (e.g. the `flotilla up` that started it). */
  readonly ppid: number;
  /** What holds it, for messages: "flotilla master m1". */
  readonly by: string;
  readonly host: string;
  /** When the lock was taken (ISO 8601). */
  readonly since: string;
  /** /proc/<pid>/stat field 22 (clock ticks after boot), against pid reuse. */
  readonly startTime?: string;
  /** /proc/sys/kernel/random/boot_id: a lock from an earlier boot is stale. */
  readonly boot?: string;
}

/** The directory is held by a live process (`holder`), or its lock file cannot be read. */
export class DirLockedError extends Error {
  override readonly name = 'DirLockedError';
  constructor(
    readonly dir: string,
    readonly holder: DirLockHolder | undefined,
    message: string,
  ) {
    super(message);
  }
}

export function isDirLockedError(err: unknown): err is DirLockedError {
  return err instanceof DirLockedError;
}

/** "pid 1234 (flotilla master m1, since 19:55:01)", or "… on host h" for another host. */
export function describeHolder(h: DirLockHolder): string {
  const since = new Date(h.since);
  const when = Number.isNaN(since.getTime()) ? h.since : since.toTimeString().slice(0, 8);
  return `pid ${h.pid} (${h.by}, since ${when}${h.host === hostname() ? '' : `, on host ${h.host}`}${h.pid === process.pid ? ', this process' : ''})`;
}

/** Locks held by this process, released when it exits normally. */
const held = new Set<DirLock>();
let exitHook = false;

/** A held lock on a data directory; `release()` when done with the directory. */
export class DirLock {
  private released = false;

  constructor(
    readonly dir: string,
    readonly path: string,
    private readonly content: string,
    /** The dead holder whose stale lock was taken over, if any (for a log line). */
    readonly tookOver: DirLockHolder | undefined,
  ) {}

  /** Removes the lock file, if it still is ours (idempotent, never throws). */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    try {
      if (readFileSync(this.path, 'utf8') === this.content) unlinkSync(this.path);
    } catch {
      // gone already (the directory was removed), or unreadable: nothing of ours to remove
    }
  }
}

/**
 * Locks `dir` (which must exist) for this process, or throws DirLockedError naming the live
 * holder. Synchronous, so nothing else can touch the directory in between. Other errors
 * (ENOSPC, EACCES, ENOENT…) are thrown as they are, with their `code`.
 */
export function lockDir(dir: string, by: string): DirLock {
  const path = join(dir, DIR_LOCK_FILE);
  const me = self();
  const content = `${JSON.stringify({ ...me, by, since: new Date().toISOString() })}\n`;
  let tookOver: DirLockHolder | undefined;
  let unreadable = false;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (create(path, content)) {
      // Read back: what the lock file holds is ours (a check that costs one read).
      if (readOrUndefined(path) === content) {
        const lock = new DirLock(dir, path, content, tookOver);
        held.add(lock);
        if (!exitHook) {
          exitHook = true;
          process.on('exit', () => {
            for (const l of [...held]) l.release();
          });
        }
        return lock;
      }
      continue;
    }
    const text = readOrUndefined(path);
    if (text === undefined) continue; // released (or taken aside) meanwhile: try again
    const holder = parse(text);
    if (holder === undefined) {
      // Only the link-less fallback can show a file before its content; give it a moment.
      if (Date.now() - mtime(path) < 5000) {
        unreadable = true;
        sleep(50);
        continue;
      }
    } else if (alive(holder)) {
      throw new DirLockedError(dir, holder, `the data directory ${dir} is in use by ${describeHolder(holder)}`);
    }
    // Stale. Only one process at a time may break it (it holds the breaker file, created as
    // exclusively as the lock), and it removes the lock only if it still holds what was judged:
    // while the stale file is there nobody can create a fresh one, so what it removes is stale.
    const breaker = `${path}.breaking`;
    if (!create(breaker, content)) {
      const other = readOrUndefined(breaker);
      const by = other === undefined ? undefined : parse(other);
      if (by !== undefined && alive(by) && Date.now() - mtime(breaker) < 10_000) {
        sleep(20);
        continue;
      }
      // A breaker that died (or hung) on the way: remove its file if it is still the same.
      if (other !== undefined && readOrUndefined(breaker) === other) removeQuietly(breaker);
      continue;
    }
    try {
      if (readOrUndefined(path) === text) {
        unlinkSync(path);
        if (holder !== undefined) tookOver = holder;
      }
    } finally {
      removeQuietly(breaker);
    }
  }
  const why = unreadable ? `its lock file ${path} names no process (another process may be writing it; remove it if none runs)` : `its lock file ${path} keeps changing (several processes are starting on it)`;
  throw new DirLockedError(dir, undefined, `the data directory ${dir} could not be locked: ${why}`);
}

/**
 * The live holder of `dir`'s lock, or undefined when it is free (no lock file, or a stale
 * one). Reads only: for a command that must say "already running" without touching anything.
 */
export function dirLockHolder(dir: string): DirLockHolder | undefined {
  const text = readOrUndefined(join(dir, DIR_LOCK_FILE));
  if (text === undefined) return undefined;
  const holder = parse(text);
  return holder !== undefined && alive(holder) ? holder : undefined;
}

/** Creates the lock file with `content`, atomically; false when it exists. */
function create(path: string, content: string): boolean {
  const tmp = `${path}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, content, { flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A file system without hard links: O_EXCL, then the content.
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return true;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

/** Whether the holder still runs (or cannot be checked from here). */
function alive(h: DirLockHolder): boolean {
  if (h.host !== hostname()) return true;
  const boot = bootId();
  if (boot !== undefined && h.boot !== undefined && h.boot !== boot) return false;
  const stat = procStat(h.pid);
  if (stat === 'no-proc') {
    try {
      process.kill(h.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (stat === undefined) return false;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return h.startTime === undefined || stat.startTime === undefined || stat.startTime === h.startTime;
}

function self(): { pid: number; ppid: number; host: string; startTime?: string; boot?: string } {
  const stat = procStat(process.pid);
  const startTime = stat === 'no-proc' ? undefined : stat?.startTime;
  const boot = bootId();
  return { pid: process.pid, ppid: process.ppid, host: hostname(), ...(startTime === undefined ? {} : { startTime }), ...(boot === undefined ? {} : { boot }) };
}

/** /proc/<pid>/stat's state and start time; undefined: no such process; 'no-proc': no procfs. */
function procStat(pid: number): { state: string; startTime: string | undefined } | undefined | 'no-proc' {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    if (pid === process.pid || readOrUndefined('/proc/self/stat') === undefined) return 'no-proc';
    return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH' ? undefined : 'no-proc';
  }
  // Field 2 (comm) is in parentheses and may hold spaces: field n (n ≥ 3) follows the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: fields[22 - 3] };
}

let boot: string | null | undefined;
function bootId(): string | undefined {
  if (boot === undefined) boot = readOrUndefined('/proc/sys/kernel/random/boot_id')?.trim() ?? null;
  return boot ?? undefined;
}

function parse(text: string): DirLockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<DirLockHolder>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0 || typeof v.host !== 'string') return undefined;
    return { ppid: 0, by: 'a process', since: '', ...v } as DirLockHolder;
  } catch {
    return undefined;
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

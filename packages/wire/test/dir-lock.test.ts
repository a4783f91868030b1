// The data directory lock (dir-lock.ts): one live holder, named when refused; stale locks of
// dead, reused or earlier-boot pids taken over; another host's never; a read-only check that
// writes nothing; and processes racing for a stale lock, of which exactly one wins.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { DIR_LOCK_FILE, dirLockHolder, isDirLockedError, lockDir } from '@flotilla/wire';

const root = mkdtempSync(join(tmpdir(), 'flotilla-dirlock-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
function dir(): string {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
}

function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]!;
}
const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** A node process that only waits (until killed); resolves once it runs. */
async function sleeper(): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.add(c);
  await once(c.stdout!, 'data');
  return c;
}

function writeLock(d: string, holder: Record<string, unknown>): void {
  writeFileSync(join(d, DIR_LOCK_FILE), JSON.stringify({ ppid: 1, by: 'flotilla test', since: new Date().toISOString(), host: hostname(), boot, ...holder }));
}

test('one holder: a second lock is refused naming the holder, release frees it, and release leaves a lock that is not ours', () => {
  const d = dir();
  const lock = lockDir(d, 'flotilla master');
  const held = JSON.parse(readFileSync(join(d, DIR_LOCK_FILE), 'utf8'));
  assert.equal(held.pid, process.pid);
  assert.equal(held.by, 'flotilla master');
  assert.equal(held.startTime, startTime(process.pid));
  assert.throws(
    () => lockDir(d, 'flotilla master'),
    (e: unknown) => isDirLockedError(e) && e.holder?.pid === process.pid && new RegExp(`^the data directory ${d} is in use by pid ${process.pid} \\(flotilla master, since \\d\\d:\\d\\d:\\d\\d, this process\\)$`).test(e.message),
  );
  assert.equal(dirLockHolder(d)?.pid, process.pid);
  lock.release();
  assert.deepEqual(readdirSync(d), [], 'released: no lock file, no temporary file left');
  assert.equal(dirLockHolder(d), undefined);
  const again = lockDir(d, 'flotilla agent w1');
  // Someone else's lock in its place (the directory was wiped and taken): not ours to remove.
  writeLock(d, { pid: 1, startTime: startTime(1) });
  again.release();
  assert.equal(JSON.parse(readFileSync(join(d, DIR_LOCK_FILE), 'utf8')).pid, 1);
});

test('a live process holds it: refused with its pid, and the read-only check writes nothing', async () => {
  const d = dir();
  const holder = await sleeper();
  writeLock(d, { pid: holder.pid, startTime: startTime(holder.pid!), by: 'flotilla agent w1' });
  const before = readFileSync(join(d, DIR_LOCK_FILE), 'utf8');
  assert.throws(() => lockDir(d, 'flotilla agent w1'), (e: unknown) => isDirLockedError(e) && e.holder?.pid === holder.pid && /in use by pid \d+ \(flotilla agent w1, since /.test(e.message));
  assert.equal(dirLockHolder(d)?.pid, holder.pid);
  assert.deepEqual(readdirSync(d), [DIR_LOCK_FILE]);
  assert.equal(readFileSync(join(d, DIR_LOCK_FILE), 'utf8'), before);
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  // Its holder is gone: the lock is stale, and taken over.
  assert.equal(dirLockHolder(d), undefined);
  const lock = lockDir(d, 'flotilla agent w1');
  assert.equal(lock.tookOver?.pid, holder.pid);
  assert.equal(JSON.parse(readFileSync(join(d, DIR_LOCK_FILE), 'utf8')).pid, process.pid);
  lock.release();
  assert.deepEqual(readdirSync(d), [], 'the stale lock moved aside is gone too');
});

test('stale: a reused pid (another start time), another boot, an unreadable old file; never another host', () => {
  const reused = dir();
  writeLock(reused, { pid: process.pid, startTime: '1' });
  lockDir(reused, 'x').release();
  const rebooted = dir();
  writeLock(rebooted, { pid: process.pid, startTime: startTime(process.pid), boot: 'another-boot' });
  lockDir(rebooted, 'x').release();
  const torn = dir();
  writeFileSync(join(torn, DIR_LOCK_FILE), '{"pid": 12');
  utimesSync(join(torn, DIR_LOCK_FILE), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  lockDir(torn, 'x').release();
  const remote = dir();
  writeLock(remote, { pid: 999_999, host: 'some-other-host' });
  assert.throws(() => lockDir(remote, 'x'), (e: unknown) => isDirLockedError(e) && /in use by pid 999999 \(flotilla test, since .*, on host some-other-host\)/.test(e.message));
});

test('processes racing for a stale lock: exactly one wins, the others are told its pid', async () => {
  const d = dir();
  writeLock(d, { pid: 999_998, startTime: '1' }); // no such process
  const racers = 6;
  const at = Date.now() + 3000;
  const script = `
    const { lockDir } = await import('@flotilla/wire');
    while (Date.now() < ${at}) {}
    try { lockDir(${JSON.stringify(d)}, 'racer ' + process.pid); console.log('won'); }
    catch (e) { console.log('lost ' + (e.holder?.pid ?? 'none') + ' ' + e.message); }
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const results = await Promise.all(
    Array.from({ length: racers }, async () => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.add(c);
      const [line] = (await once(createInterface({ input: c.stdout! }), 'line')) as [string];
      return { c, line };
    }),
  );
  try {
    const winners = results.filter((r) => r.line === 'won');
    assert.equal(winners.length, 1, results.map((r) => r.line).join(' | '));
    const winner = winners[0]!.c.pid;
    for (const r of results) if (r !== winners[0]) assert.match(r.line, new RegExp(`^lost ${winner} `));
    assert.equal(JSON.parse(readFileSync(join(d, DIR_LOCK_FILE), 'utf8')).pid, winner);
  } finally {
    for (const r of results) r.c.stdin!.end();
    await Promise.all(results.map((r) => (r.c.exitCode === null ? once(r.c, 'exit') : undefined)));
  }
  assert.deepEqual(readdirSync(d), [], 'the winner released it when it exited');
});

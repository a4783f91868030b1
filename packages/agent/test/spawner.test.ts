// The spawner shell: every word reaches the process exactly as given (quotes, $, backticks,
// newlines, spaces), the environment is exactly what was asked, the process leads its own
// process group, and its exit status (128 + n for signal n) comes back.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '@flotilla/wire';
import { shellWord, Spawner } from '../src/runtime/spawner.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-spawner-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function kill(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

test('words and environment arrive exactly; exit statuses come back', async () => {
  let lost = '';
  const spawner = Spawner.create(silentLogger, (why) => (lost = why));
  assert.ok(spawner !== undefined, 'this machine has /bin/sh, setsid and env');
  const log = join(dir, 'out.log');
  const tricky = ["it's", '$HOME', '`id`', 'a\nb', '  spaced  ', '"q"', '\\', '*', ''];
  const script = 'console.log(JSON.stringify({ args: process.argv.slice(1), env: process.env, pgid: Number(require("fs").readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[2]), pid: process.pid, cwd: process.cwd() }))';
  const env = { ONLY: 'me', 'DOTTED.NAME': "x'y\nz" };
  let status = -1;
  const exited = new Promise<void>((resolve) => {
    void spawner.spawn({ program: process.execPath, args: ['-e', script, ...tricky], env, cwd: dir, logPath: log }, (s) => {
      status = s;
      resolve();
    });
  });
  await exited;
  assert.equal(status, 0);
  const out = JSON.parse(readFileSync(log, 'utf8'));
  assert.deepEqual(out.args, tricky);
  assert.deepEqual(out.env, env, 'exactly the given environment');
  assert.equal(out.pgid, out.pid, 'the process leads its own process group');
  assert.equal(out.cwd, dir);

  // A signal: 128 + n. A failing exit: its code. Many at once: each gets its own answer.
  let killedStatus = -1;
  const killed = new Promise<void>((resolve) => {
    void spawner.spawn({ program: '/bin/sleep', args: ['30'], env: {}, cwd: '/', logPath: log }, (s) => {
      killedStatus = s;
      resolve();
    }).then((pid) => process.kill(pid, 'SIGKILL'));
  });
  await killed;
  assert.equal(killedStatus, 137);
  const codes = await Promise.all(
    Array.from({ length: 20 }, (_, i) => new Promise<number>((resolve) => void spawner.spawn({ program: '/bin/sh', args: ['-c', `exit ${i}`], env: {}, cwd: '/', logPath: log }, resolve))),
  );
  assert.deepEqual(codes, Array.from({ length: 20 }, (_, i) => i));
  // A working directory that does not exist: the process exits 126, and says so in its log.
  const noDir = await new Promise<number>((resolve) => void spawner.spawn({ program: '/bin/true', args: [], env: {}, cwd: join(dir, 'missing'), logPath: join(dir, 'nodir.log') }, resolve));
  assert.equal(noDir, 126);
  assert.match(readFileSync(join(dir, 'nodir.log'), 'utf8'), /missing/);
  assert.throws(() => void spawner.spawn({ program: '/bin/true', args: ['a\0b'], env: {}, cwd: '/', logPath: log }, () => undefined), /NUL byte/);
  spawner.close();
  await assert.rejects(spawner.spawn({ program: '/bin/true', args: [], env: {}, cwd: '/', logPath: log }, () => undefined), /closed/);
  assert.equal(lost, '', 'closing is not losing');
});

test('a spawner that dies is reported, and pending starts fail', async () => {
  let lost = '';
  const spawner = Spawner.create(silentLogger, (why) => (lost = why))!;
  const pid = await spawner.spawn({ program: '/bin/sleep', args: ['30'], env: {}, cwd: '/', logPath: join(dir, 'x.log') }, () => undefined);
  try {
    const shellPid = (spawner as unknown as { shell: { pid: number } }).shell.pid;
    process.kill(shellPid, 'SIGKILL');
    while (lost === '') await new Promise((r) => setTimeout(r, 10));
    assert.match(lost, /the process spawner \(pid \d+\) exited \(SIGKILL\)/);
    assert.doesNotThrow(() => process.kill(pid, 0), 'what it started keeps running');
    await assert.rejects(spawner.spawn({ program: '/bin/true', args: [], env: {}, cwd: '/', logPath: join(dir, 'x.log') }, () => undefined), /exited/);
  } finally {
    kill(pid);
  }
});

test('shell words are single-quoted with quotes and newlines spelled out', () => {
  assert.equal(shellWord("a'b"), `'a'\\''b'`);
  assert.equal(shellWord('a\nb'), `'a'"$FLOTILLA_NL"'b'`);
});

test('variable names a shell cannot export still arrive (through env -i), even ones like options', async () => {
  const spawner = Spawner.create(silentLogger, () => undefined)!;
  const log = join(dir, 'env.log');
  try {
    const env = { 'my.var': '1', PLAIN: 'two words', 'dash-name': "it's", '--split-string': '/usr/bin/id -un', '-i': 'x' };
    const status = await new Promise<number>((resolve) => void spawner.spawn({ program: process.execPath, args: ['-e', 'console.log(JSON.stringify(process.env))'], env, cwd: dir, logPath: log }, resolve));
    assert.equal(status, 0);
    assert.deepEqual(JSON.parse(readFileSync(log, 'utf8')), env);
  } finally {
    spawner.close();
  }
});

test("a pod variable named like the spawner's newline variable changes nothing", async () => {
  const spawner = Spawner.create(silentLogger, () => undefined)!;
  const log = join(dir, 'nl.log');
  try {
    const status = await new Promise<number>((resolve) => void spawner.spawn({ program: process.execPath, args: ['-e', 'console.log(JSON.stringify(process.argv.slice(1)))', 'line1\nline2'], env: { FLOTILLA_NL: 'XX' }, cwd: dir, logPath: log }, resolve));
    assert.equal(status, 0);
    assert.deepEqual(JSON.parse(readFileSync(log, 'utf8')), ['line1\nline2']);
  } finally {
    spawner.close();
  }
});

test('an exit is reported only after the start resolved, even for a process that ends at once', async () => {
  const spawner = Spawner.create(silentLogger, () => undefined)!;
  try {
    for (let i = 0; i < 30; i++) {
      let resolved = false;
      const order: string[] = [];
      await new Promise<void>((done) => {
        void spawner
          .spawn({ program: '/bin/true', args: [], env: {}, cwd: '/', logPath: join(dir, 'true.log') }, () => {
            order.push(resolved ? 'exit after start' : 'exit before start');
            done();
          })
          .then(() => {
            resolved = true;
          });
      });
      assert.deepEqual(order, ['exit after start']);
    }
  } finally {
    spawner.close();
  }
});

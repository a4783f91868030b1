// The process runtime with real processes: exit codes and reasons, stopping whole process
// groups (SIGTERM, then SIGKILL after the grace period), the exact environment, refusing what it
// cannot run, logs (tailLines, limitBytes, previous, follow, rotation), recovery by a new
// runtime on the same data directory, corrupt records, and cgroup v2 limits written into a fake
// cgroup hierarchy (this machine has cgroup v1, so real enforcement is not exercised here).
//
// Note: PID 1 here does not reap orphans, so a killed grandchild can linger as a zombie;
// `gone()` counts a zombie as gone (it has exited and runs nothing).
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Logger } from '@flotilla/wire';
import { createContainerCgroup } from '../src/runtime/cgroup.ts';
import { ProcessRuntime } from '../src/runtime/process.ts';
import { RuntimeError, type ContainerConfig, type ContainerInfo, type LogOptions } from '../src/runtime/types.ts';

const root = mkdtempSync(join(tmpdir(), 'flotilla-runtime-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

const node = process.execPath;

/** A container running `node -e script`. */
function nodeContainer(script: string, overrides: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    podUid: 'uid-1',
    podNamespace: 'default',
    podName: 'web',
    containerName: 'main',
    attempt: 0,
    command: [node, '-e', script],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    ...overrides,
  };
}

/** Whether a process has exited (a zombie has). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw err;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/** Kills every process group and process given, ignoring those already gone. */
function killAll(pids: Iterable<number | undefined>): void {
  for (const pid of pids) {
    if (pid === undefined) continue;
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The whole answer of a logs() call that is not followed. */
function readLogs(rt: ProcessRuntime, options: LogOptions = {}, podUid = 'uid-1', containerName = 'main'): Promise<{ text: string; error?: { code: number; message: string } }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    rt.logs(podUid, containerName, options, {
      data: (c) => chunks.push(Buffer.from(c)),
      end: (error) => resolve(error === undefined ? { text: Buffer.concat(chunks).toString() } : { text: Buffer.concat(chunks).toString(), error }),
    });
  });
}

function exitOf(rt: ProcessRuntime, id: string): Promise<ContainerInfo> {
  return new Promise((resolve) => rt.onExit((info) => info.id === id && resolve(info)));
}

const quietLogger = (warnings: string[] = []): Logger => {
  const logger: Logger = {
    info: () => undefined,
    warn: (_fields, message) => warnings.push(message),
    error: (_fields, message) => warnings.push(message),
    child: () => logger,
  };
  return logger;
};

test('exit code 0 is Completed, any other is Error; onExit fires once per exit', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  const exits: ContainerInfo[] = [];
  rt.onExit((i) => exits.push(i));
  try {
    const ok = await rt.create(nodeContainer('process.exit(0)'));
    const bad = await rt.create(nodeContainer('process.exit(3)', { containerName: 'side' }));
    assert.equal(ok.state, 'created');
    const okExit = exitOf(rt, ok.id);
    const badExit = exitOf(rt, bad.id);
    const running = await rt.start(ok.id);
    assert.equal(running.state, 'running');
    assert.ok(running.pid !== undefined && running.startedAt !== undefined);
    await rt.start(bad.id);
    const [a, b] = await Promise.all([okExit, badExit]);
    assert.deepEqual([a.state, a.exitCode, a.reason, a.signal], ['exited', 0, 'Completed', undefined]);
    assert.deepEqual([b.state, b.exitCode, b.reason], ['exited', 3, 'Error']);
    assert.ok(b.finishedAt !== undefined);
    assert.equal(rt.get(bad.id)?.exitCode, 3);
    assert.deepEqual(rt.list().map((i) => i.id), [ok.id, bad.id], 'creation order');
    await rt.stop(ok.id, 1000); // already exited: nothing happens, no second exit
    assert.equal(exits.length, 2);
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('the environment is exactly config.env and the process runs in workingDir', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  const work = dir();
  try {
    const env = { ONLY: 'this', SPACES: 'two words', EMPTY: '' };
    const c = await rt.create(nodeContainer('process.stdout.write(JSON.stringify({ env: process.env, cwd: process.cwd() }))', { env, workingDir: work }));
    const exit = exitOf(rt, c.id);
    await rt.start(c.id);
    assert.equal((await exit).exitCode, 0);
    const seen = JSON.parse((await readLogs(rt)).text) as { env: Record<string, string>; cwd: string };
    assert.deepEqual(seen.env, env, 'nothing of the agent\'s environment leaks in');
    assert.equal(seen.cwd, work);
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('stop() sends SIGTERM to the whole process group; both processes end', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  let grandchild: number | undefined;
  try {
    // The parent traps SIGTERM and waits for the grandchild, which keeps the default action:
    // the grandchild can only get SIGTERM from the group signal, as the parent forwards nothing.
    const script = `
      const g = require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' });
      let termed = false, ended = false;
      const maybeExit = () => termed && ended && process.exit(0);
      process.on('SIGTERM', () => { console.log('parent got SIGTERM'); termed = true; maybeExit(); });
      g.on('exit', (code, signal) => { console.log('grandchild ended by ' + signal); ended = true; maybeExit(); });
      console.log('grandchild pid ' + g.pid);
      setInterval(() => {}, 1000);`;
    const c = await rt.create(nodeContainer(script));
    const started = await rt.start(c.id);
    await waitFor('the grandchild to start', async () => /grandchild pid (\d+)/.test((await readLogs(rt)).text));
    grandchild = Number(/grandchild pid (\d+)/.exec((await readLogs(rt)).text)![1]);
    assert.ok(!gone(grandchild));

    const stopped = await rt.stop(c.id, 10_000);
    assert.equal(stopped.state, 'exited');
    assert.equal(stopped.reason, 'Completed');
    const log = (await readLogs(rt)).text;
    assert.match(log, /parent got SIGTERM/);
    assert.match(log, /grandchild ended by SIGTERM/);
    assert.ok(gone(started.pid!), 'the container process is gone');
    await waitFor('the grandchild to be gone', () => gone(grandchild!));
  } finally {
    killAll([...rt.list().map((i) => i.pid), grandchild]);
    await rt.close();
  }
});

test('a process that ignores SIGTERM is SIGKILLed, with its group, after the grace period', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  let grandchild: number | undefined;
  try {
    const ignoring = `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => {}, 1000);`;
    const script = `
      const g = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(ignoring)}], { stdio: 'inherit' });
      ${ignoring}
      console.log('grandchild pid ' + g.pid);`;
    const c = await rt.create(nodeContainer(script));
    const started = await rt.start(c.id);
    await waitFor('both processes to be ready', async () => /grandchild pid (\d+)/.test((await readLogs(rt)).text));
    grandchild = Number(/grandchild pid (\d+)/.exec((await readLogs(rt)).text)![1]);

    const stopped = await rt.stop(c.id, 300);
    assert.deepEqual([stopped.signal, stopped.exitCode, stopped.reason], ['SIGKILL', 137, 'Error']);
    assert.match((await readLogs(rt)).text, /ignoring SIGTERM/, 'SIGTERM came first');
    assert.ok(gone(started.pid!));
    await waitFor('the grandchild to be gone', () => gone(grandchild!));
  } finally {
    killAll([...rt.list().map((i) => i.pid), grandchild]);
    await rt.close();
  }
});

test('when the main process exits, what is left of its process group is killed', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  let grandchild: number | undefined;
  try {
    const script = `
      const g = require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log('grandchild pid ' + g.pid);
      process.exit(0);`;
    const c = await rt.create(nodeContainer(script));
    const exit = exitOf(rt, c.id);
    await rt.start(c.id);
    assert.equal((await exit).reason, 'Completed');
    grandchild = Number(/grandchild pid (\d+)/.exec((await readLogs(rt)).text)![1]);
    await waitFor('the left-over grandchild to be killed', () => gone(grandchild!));
  } finally {
    killAll([...rt.list().map((i) => i.pid), grandchild]);
    await rt.close();
  }
});

test('what the runtime cannot run is refused up front with a clear reason', async () => {
  const d = dir();
  const rt = new ProcessRuntime({ dataDir: d });
  try {
    const refused = (config: ContainerConfig, reason: string, message: RegExp): Promise<void> =>
      assert.rejects(rt.create(config), (e: unknown) => e instanceof RuntimeError && e.reason === reason && message.test(e.message));

    await refused(
      { ...nodeContainer(''), command: [], image: 'nginx:1.25' },
      'ImageNotRunnable',
      /^the process runtime cannot run image "nginx:1\.25": it runs programs on the node; give the container a command \(or an image that is an absolute path to an executable\)$/,
    );
    await refused({ ...nodeContainer(''), command: [], image: '/no/such/program' }, 'ImageNotRunnable', /no executable file at that path/);
    await refused({ ...nodeContainer(''), command: ['no-such-program-xyz'] }, 'CommandNotFound', /"no-such-program-xyz" was not found in the container's PATH/);
    await refused({ ...nodeContainer(''), command: ['node'], env: { PATH: d } }, 'CommandNotFound', /not found in the container's PATH \(/);
    const notExecutable = join(d, 'data.txt');
    writeFileSync(notExecutable, 'not a program', { mode: 0o644 });
    await refused({ ...nodeContainer(''), command: [notExecutable] }, 'CommandNotFound', /is not executable/);
    await refused({ ...nodeContainer(''), command: ['./missing'], workingDir: d }, 'CommandNotFound', /does not exist/);
    await refused(nodeContainer('', { workingDir: join(d, 'nowhere') }), 'RunContainerError', /working directory .* is not a directory/);
    await refused(nodeContainer('', { podUid: '../escape' }), 'CreateContainerError', /cannot name a directory/);
    assert.deepEqual(rt.list(), [], 'nothing was created');

    // An image that is an absolute path to an executable runs, with args.
    const byImage = await rt.create({ ...nodeContainer(''), command: [], image: node, args: ['-e', 'process.exit(4)'] });
    const exit = exitOf(rt, byImage.id);
    await rt.start(byImage.id);
    assert.deepEqual([(await exit).exitCode, (await exit).image], [4, node]);

    // A program that disappears between create() and start() is caught before spawning.
    const copy = join(d, 'prog');
    copyFileSync('/bin/true', copy);
    chmodSync(copy, 0o755);
    const c = await rt.create({ ...nodeContainer(''), command: [copy], containerName: 'gone' });
    rmSync(copy);
    await assert.rejects(rt.start(c.id), (e: unknown) => e instanceof RuntimeError && e.reason === 'CommandNotFound');
    // One whose exec fails (its interpreter is missing): through the spawner it starts and
    // exits at once with 127 (env(1): the program could not be found), saying why in its log.
    const badInterpreter = join(d, 'script');
    writeFileSync(badInterpreter, '#!/no/such/interpreter\n', { mode: 0o755 });
    const failing = await rt.create({ ...nodeContainer(''), command: [badInterpreter], containerName: 'bad' });
    const failed = exitOf(rt, failing.id);
    await rt.start(failing.id);
    assert.deepEqual([(await failed).exitCode, (await failed).reason], [127, 'Error']);
    assert.match((await readLogs(rt, {}, failing.podUid, 'bad')).text, /script/);
    await assert.rejects(rt.start('nope'), (e: unknown) => e instanceof RuntimeError && e.reason === 'ContainerNotFound');
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test("without the spawner (Node's spawn): exit codes, stop, and an exec failure is a StartError", async () => {
  const d = dir();
  const rt = new ProcessRuntime({ dataDir: d, spawner: false });
  try {
    const c = await rt.create(nodeContainer('process.exit(5)'));
    const exit = exitOf(rt, c.id);
    await rt.start(c.id);
    assert.equal((await exit).exitCode, 5);
    const long = await rt.create(nodeContainer('setInterval(() => {}, 1000)', { containerName: 'long' }));
    await rt.start(long.id);
    const stopped = await rt.stop(long.id, 5000);
    assert.deepEqual([stopped.exitCode, stopped.signal], [143, 'SIGTERM']);
    const badInterpreter = join(d, 'script');
    writeFileSync(badInterpreter, '#!/no/such/interpreter\n', { mode: 0o755 });
    const failing = await rt.create({ ...nodeContainer(''), command: [badInterpreter], containerName: 'bad' });
    await assert.rejects(rt.start(failing.id), (e: unknown) => e instanceof RuntimeError && e.reason === 'RunContainerError' && /cannot start .*script/.test(e.message));
    assert.deepEqual([rt.get(failing.id)?.state, rt.get(failing.id)?.exitCode, rt.get(failing.id)?.reason], ['exited', 128, 'StartError']);
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('logs: stdout and stderr in one file, tailLines, limitBytes, sinceSeconds, previous', async () => {
  const d = dir();
  const rt = new ProcessRuntime({ dataDir: d });
  try {
    const run = async (config: ContainerConfig): Promise<ContainerInfo> => {
      const c = await rt.create(config);
      const exit = exitOf(rt, c.id);
      await rt.start(c.id);
      return exit;
    };
    await run(nodeContainer(`console.log('first run'); console.error('on stderr')`));
    assert.equal((await readLogs(rt)).text, 'first run\non stderr\n');
    assert.deepEqual(await readLogs(rt, { previous: true }), {
      text: '',
      error: { code: 400, message: 'previous terminated container "main" in pod "web" not found' },
    });

    await run(nodeContainer(`for (let i = 1; i <= 10; i++) console.log('line ' + i)`, { attempt: 1 }));
    const all = Array.from({ length: 10 }, (_, i) => `line ${i + 1}\n`).join('');
    assert.equal((await readLogs(rt)).text, all);
    assert.equal((await readLogs(rt, { tailLines: 3 })).text, 'line 8\nline 9\nline 10\n');
    assert.equal((await readLogs(rt, { tailLines: 100 })).text, all);
    assert.equal((await readLogs(rt, { tailLines: 0 })).text, '');
    assert.equal((await readLogs(rt, { limitBytes: 10 })).text, all.slice(0, 10));
    assert.equal((await readLogs(rt, { tailLines: 2, limitBytes: 4 })).text, 'line');
    assert.equal((await readLogs(rt, { sinceSeconds: 3600 })).text, all, 'written within the hour');
    assert.equal((await readLogs(rt, { previous: true })).text, 'first run\non stderr\n');
    assert.equal((await readLogs(rt, {}, 'uid-1', 'other')).error?.code, 404);

    // A third run: the first run's log goes, the second stays as `previous`.
    await run(nodeContainer(`console.log('third')`, { attempt: 2 }));
    const logDir = join(d, 'pods', 'uid-1', 'main');
    assert.equal(existsSync(join(logDir, '0.log')), false);
    assert.equal((await readLogs(rt, { previous: true })).text, all);
    assert.equal((await readLogs(rt)).text, 'third\n');

    // Removing the second run while the third exists keeps it as `previous`; removing the
    // last run removes the container's logs.
    await rt.remove('uid-1_main_1');
    assert.equal((await readLogs(rt, { previous: true })).text, all);
    assert.equal(existsSync(join(d, 'containers', 'uid-1_main_1.json')), false, 'its record is deleted');
    await rt.remove('uid-1_main_0');
    await rt.remove('uid-1_main_2');
    assert.equal(existsSync(join(d, 'pods', 'uid-1')), false);
    assert.deepEqual(rt.list(), []);
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('follow streams what the container writes and ends once it has exited; cancel stops it', async () => {
  const rt = new ProcessRuntime({ dataDir: dir() });
  try {
    // Writes 20 lines, one per 30 ms, then waits for SIGTERM.
    const script = `let i = 0; const t = setInterval(() => { console.log('tick ' + i); if (++i === 20) clearInterval(t); }, 30); process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); setInterval(() => {}, 1000);`;
    const c = await rt.create(nodeContainer(script));
    await rt.start(c.id);
    const chunks: Buffer[] = [];
    let ended: { error?: unknown } | undefined;
    rt.logs('uid-1', 'main', { follow: true }, { data: (b) => chunks.push(Buffer.from(b)), end: (error) => (ended = { error }) });
    let cancelledChunks = 0;
    const cancel = rt.logs('uid-1', 'main', { follow: true }, { data: () => cancelledChunks++, end: () => assert.fail('a cancelled stream is not ended') });

    await waitFor('all 20 lines', () => Buffer.concat(chunks).toString().includes('tick 19\n'));
    assert.equal(ended, undefined, 'still following while the container runs');
    cancel();
    await rt.stop(c.id, 5000);
    await waitFor('the stream to end', () => ended !== undefined);
    assert.deepEqual(ended, { error: undefined });
    const expected = Array.from({ length: 20 }, (_, i) => `tick ${i}\n`).join('') + 'bye\n';
    assert.equal(Buffer.concat(chunks).toString(), expected);
    assert.ok(cancelledChunks > 0);
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('logs are copy-truncated above maxLogBytes; a follower neither repeats nor reorders across rotations', async () => {
  const d = dir();
  const rt = new ProcessRuntime({ dataDir: d, maxLogBytes: 2000 });
  try {
    // 200 numbered lines of 100 bytes, one every 10 ms: 20 kB through a 2 kB log, rotated
    // about every second.
    const script = `let i = 0; const t = setInterval(() => { process.stdout.write('line ' + String(i).padStart(4, '0') + ' ' + 'x'.repeat(89) + '\\n'); if (++i === 200) clearInterval(t); }, 10);`;
    const c = await rt.create(nodeContainer(script));
    const exit = exitOf(rt, c.id);
    await rt.start(c.id);
    const chunks: Buffer[] = [];
    const done = new Promise<unknown>((resolve) => rt.logs('uid-1', 'main', { follow: true }, { data: (b) => chunks.push(Buffer.from(b)), end: resolve }));
    await exit;
    assert.equal(await done, undefined, 'the follower ends once the container has exited');

    const path = join(d, 'pods', 'uid-1', 'main', '0.log');
    assert.ok(existsSync(`${path}.1`), 'rotated at least once');
    assert.ok(statSync(path).size < 20_000, 'the current file was truncated');

    // Copy-truncate can drop a line written in the microseconds between the last catch-up
    // read and the truncate (logs.ts); anything else — a gap of more than a line per
    // rotation, a repeat, a reordering, a torn line — is a bug.
    const numbers = (text: string): number[] =>
      text.split('\n').slice(0, -1).map((line) => {
        assert.match(line, /^line \d{4} x{89}$/);
        return Number(line.slice(5, 9));
      });
    const followed = numbers(Buffer.concat(chunks).toString());
    assert.equal(followed[0], 0);
    assert.equal(followed.at(-1), 199);
    assert.ok(followed.every((v, i) => i === 0 || v > followed[i - 1]!), 'in order, nothing repeated');
    assert.ok(followed.length >= 197, `at most one line lost per rotation (got ${followed.length} of 200)`);

    // What is kept (.log.1 then .log) is the end of the output, read as one log.
    const kept = numbers((await readLogs(rt)).text);
    assert.ok(kept.length < 200 && kept.at(-1) === 199);
    assert.ok(kept.every((v, i) => i === 0 || v > kept[i - 1]!));
    assert.deepEqual(numbers((await readLogs(rt, { tailLines: 2 })).text), kept.slice(-2));
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('a new runtime on the same data directory adopts running containers; stop and self-exit both work', async () => {
  const d = dir();
  const trigger = join(dir(), 'exit-now');
  const first = new ProcessRuntime({ dataDir: d });
  const pids: (number | undefined)[] = [];
  let second: ProcessRuntime | undefined;
  try {
    const longRunning = `console.log('up'); setInterval(() => {}, 1000);`;
    const untilTrigger = `setInterval(() => { if (require('node:fs').existsSync(${JSON.stringify(trigger)})) process.exit(5); }, 20);`;
    const a = await first.create(nodeContainer(longRunning, { containerName: 'a' }));
    const b = await first.create(nodeContainer(untilTrigger, { containerName: 'b' }));
    const done = await first.create(nodeContainer('process.exit(2)', { containerName: 'done' }));
    const doneExit = exitOf(first, done.id);
    pids.push((await first.start(a.id)).pid, (await first.start(b.id)).pid, (await first.start(done.id)).pid);
    await doneExit;
    await waitFor('a to have written its first line', async () => /^up\n/.test((await readLogs(first, {}, 'uid-1', 'a')).text));
    let followEnded = false;
    first.logs('uid-1', 'a', { follow: true }, { data: () => undefined, end: () => (followEnded = true) });
    await first.close();
    assert.ok(followEnded, 'close() ends the streams it was following');
    assert.ok(!gone(pids[0]!) && !gone(pids[1]!), 'close() leaves the processes running');

    second = new ProcessRuntime({ dataDir: d });
    const exits: ContainerInfo[] = [];
    second.onExit((i) => exits.push(i));
    const found = await second.recover();
    const byName = new Map(found.map((i) => [i.containerName, i]));
    assert.deepEqual([byName.get('a')?.state, byName.get('a')?.pid], ['running', pids[0]]);
    assert.deepEqual([byName.get('b')?.state, byName.get('b')?.pid], ['running', pids[1]]);
    assert.deepEqual([byName.get('done')?.state, byName.get('done')?.exitCode, byName.get('done')?.reason], ['exited', 2, 'Error']);
    assert.match((await readLogs(second, {}, 'uid-1', 'a')).text, /^up\n/, 'logs are still there');

    // stop() works on an adopted process; its exit code cannot be known.
    const stopped = await second.stop(a.id, 5000);
    assert.deepEqual([stopped.state, stopped.exitCode, stopped.reason], ['exited', undefined, 'ContainerStatusUnknown']);
    assert.ok(gone(pids[0]!));

    // One that exits by itself is noticed by polling.
    writeFileSync(trigger, '');
    await waitFor('the adopted process to be seen exiting', () => second!.get(b.id)?.state === 'exited');
    assert.equal(second.get(b.id)?.reason, 'ContainerStatusUnknown');
    assert.deepEqual(exits.map((i) => i.containerName).sort(), ['a', 'b'], 'one exit each');
  } finally {
    killAll([...pids, ...(second?.list().map((i) => i.pid) ?? [])]);
    await first.close();
    await second?.close();
  }
});

test('a container found dead at recovery is exited with ContainerStatusUnknown; corrupt records are skipped and deleted', async () => {
  const d = dir();
  const first = new ProcessRuntime({ dataDir: d });
  let pid: number | undefined;
  try {
    const c = await first.create(nodeContainer('setInterval(() => {}, 1000)'));
    pid = (await first.start(c.id)).pid;
    await first.close();
    process.kill(-pid!, 'SIGKILL'); // dies while no agent watches
    await waitFor('the process to die', () => gone(pid!));

    writeFileSync(join(d, 'containers', 'broken_x_0.json'), '{"id": "broken_x_0", ');
    writeFileSync(join(d, 'containers', 'wrong_x_0.json'), JSON.stringify({ id: 'wrong_x_0', state: 'running' }));
    const warnings: string[] = [];
    const second = new ProcessRuntime({ dataDir: d, logger: quietLogger(warnings) });
    const found = await second.recover();
    assert.deepEqual(found.map((i) => [i.id, i.state, i.exitCode, i.reason]), [[c.id, 'exited', undefined, 'ContainerStatusUnknown']]);
    assert.equal(warnings.filter((w) => /corrupt container record/.test(w)).length, 2);
    assert.equal(existsSync(join(d, 'containers', 'broken_x_0.json')), false);
    assert.equal(existsSync(join(d, 'containers', 'wrong_x_0.json')), false);
    await second.close();
  } finally {
    killAll([pid]);
    await first.close();
  }
});

test('cgroup v2 limits are written into a (fake) cgroup hierarchy and the process joins it before running', async () => {
  const fake = dir();
  writeFileSync(join(fake, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  writeFileSync(join(fake, 'cgroup.subtree_control'), '');
  const rt = new ProcessRuntime({ dataDir: dir(), cgroupRoot: fake, nodeName: 'w1' });
  try {
    assert.equal(rt.limits.enforced, true, rt.limits.note);
    assert.match(rt.limits.note, /enforced with cgroup v2/);
    const base = join(fake, 'flotilla-w1');
    assert.equal(readFileSync(join(fake, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory');
    assert.equal(readFileSync(join(base, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory');

    const env = { PWD: '/given', ONLY: 'this' };
    const script = `console.log(JSON.stringify(process.env)); setInterval(() => {}, 1000);`;
    const c = await rt.create(nodeContainer(script, { env, limits: { cpuMillis: 250, memoryBytes: 64 * 1024 * 1024 } }));
    const started = await rt.start(c.id);
    const cg = join(base, c.id);
    assert.equal(readFileSync(join(cg, 'cpu.max'), 'utf8'), '25000 100000');
    assert.equal(readFileSync(join(cg, 'memory.max'), 'utf8'), String(64 * 1024 * 1024));
    await waitFor('the program to run', async () => (await readLogs(rt)).text.includes('\n'));
    assert.equal(readFileSync(join(cg, 'cgroup.procs'), 'utf8').trim(), String(started.pid), 'the process wrote its own pid before exec');
    assert.deepEqual(JSON.parse((await readLogs(rt)).text), env, 'the wrapper shell adds nothing to the environment');

    // The kernel would count an OOM kill here.
    writeFileSync(join(cg, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    const stopped = await rt.stop(c.id, 0);
    assert.equal(stopped.reason, 'OOMKilled');
    await waitFor('the cgroup directory to be removed', () => !existsSync(cg));
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

test('cgroup limits: quotas have a floor, and a hierarchy without the controllers is not used', () => {
  const fake = dir();
  assert.equal(readFileSync(join(createContainerCgroup(fake, 'c1', { cpuMillis: 5 }), 'cpu.max'), 'utf8'), '1000 100000', 'at least 1 ms per period');
  assert.equal(existsSync(join(fake, 'c1', 'memory.max')), false, 'no memory limit, nothing written');
  assert.equal(readFileSync(join(createContainerCgroup(fake, 'c2', { cpuMillis: 2000 }), 'cpu.max'), 'utf8'), '200000 100000');

  const noMemory = dir();
  writeFileSync(join(noMemory, 'cgroup.controllers'), 'cpu io\n');
  const rt = new ProcessRuntime({ dataDir: dir(), cgroupRoot: noMemory, nodeName: 'w1' });
  assert.equal(rt.limits.enforced, false);
  assert.match(rt.limits.note, /the memory controller is not available .*; CPU and memory limits are not enforced$/);
  assert.equal(existsSync(join(noMemory, 'flotilla-w1')), false);
  void rt.close();
});

test('on this machine (cgroup v1) limits are reported as not enforced, with the reason', async (t) => {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    t.skip('this machine has cgroup v2 at /sys/fs/cgroup; the detection of v1 cannot be checked here');
    return;
  }
  const rt = new ProcessRuntime({ dataDir: dir(), nodeName: 'w1' });
  try {
    assert.equal(rt.limits.enforced, false);
    assert.match(rt.limits.note, /^cgroup v2 is not available here \(.+\); CPU and memory limits are not enforced$/);
    const c = await rt.create(nodeContainer('process.exit(0)', { limits: { cpuMillis: 100, memoryBytes: 1 << 20 } }));
    const exit = exitOf(rt, c.id);
    await rt.start(c.id);
    assert.equal((await exit).reason, 'Completed', 'limits that cannot be enforced do not stop a container');
  } finally {
    killAll(rt.list().map((i) => i.pid));
    await rt.close();
  }
});

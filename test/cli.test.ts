// The flotilla command as a user runs it: real processes, their output and exit codes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ProcessCluster, freePort } from './support/masters.ts';

const BIN = fileURLToPath(new URL('../packages/cli/bin/flotilla.mjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function flotilla(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function clusterFile(name: string, body: string): string {
  const path = join(scratch, `${name}.yaml`);
  writeFileSync(path, body);
  return path;
}

const SECRET = 'secret: 0123456789abcdef-cli-test';

test('a bad cluster file stops the master with one clear sentence and no stack trace', async () => {
  const p1 = await freePort('127.0.0.1');
  const p2 = await freePort('127.0.0.1');
  const good = (extra = '') => `cluster: t\n${SECRET}\nmasters:\n  - { name: m1, peer: "127.0.0.1:${p1}", client: "127.0.0.1:${p2}", data: d1${extra} }\n`;
  const cases: [string, string, string[], RegExp][] = [
    ['missing field', `cluster: t\n${SECRET}\nmasters:\n  - { name: m1, client: "127.0.0.1:${p2}", data: d1 }\n`, ['--name', 'm1'], /masters\[0\] \(m1\) has no "peer"/],
    ['duplicate name', `${good()}  - { name: m1, peer: "127.0.0.1:1", client: "127.0.0.1:2", data: d2 }\n`, ['--name', 'm1'], /two masters are named m1/],
    ['unknown name', good(), ['--name', 'm9'], /has no master named m9; it has m1/],
    ['invalid YAML', 'cluster: [t\n', ['--name', 'm1'], /is not valid YAML/],
    ['short secret', good().replace(SECRET, 'secret: short'), ['--name', 'm1'], /secret must be at least 16 characters/],
    ['bad address', good().replace(`"127.0.0.1:${p1}"`, '"127.0.0.1:99999"'), ['--name', 'm1'], /peer must be host:port with a port from 1 to 65535/],
    ['bad store tuning', good().replace('masters:', 'store: { historyRevisions: 5 }\nmasters:'), ['--name', 'm1'], /store.historyRevisions must be an integer from 100 to 10000000/],
    ['bad API limits', good().replace('masters:', 'apiServer: { maxRequestsInFlight: 0 }\nmasters:'), ['--name', 'm1'], /apiServer.maxRequestsInFlight must be an integer from 1 to 100000/],
    ['unknown API limit', good().replace('masters:', 'apiServer: { maxInflight: 5 }\nmasters:'), ['--name', 'm1'], /apiServer has an unknown field "maxInflight" \(known: maxRequestsInFlight, maxMutatingRequestsInFlight\)/],
    ['bad node lifecycle', good().replace('masters:', 'nodeLifecycle: { gracePeriodSeconds: 0 }\nmasters:'), ['--name', 'm1'], /nodeLifecycle.gracePeriodSeconds must be a number of seconds from 0.1 to 86400/],
    ['control plane not a boolean', good().replace('masters:', 'controlPlane: "no"\nmasters:'), ['--name', 'm1'], /controlPlane must be true or false/],
    ['node lifecycle not a mapping', good().replace('masters:', 'nodeLifecycle: 5\nmasters:'), ['--name', 'm1'], /"nodeLifecycle" must be a mapping, e.g. nodeLifecycle: \{ gracePeriodSeconds: 5, evictionSeconds: 5 \}/],
    ['short token', good().replace('masters:', 'tokens:\n  - { name: a, token: short, role: admin }\nmasters:'), ['--name', 'm1'], /tokens\[0\] \(a\) needs a "token" of at least 16 characters/],
    ['bad role', good().replace('masters:', 'tokens:\n  - { name: a, token: 0123456789abcdef0, role: root }\nmasters:'), ['--name', 'm1'], /role must be admin or viewer/],
    ['unusable data directory', good().replace('data: d1', 'data: /etc/passwd/m1'), ['--name', 'm1'], /cannot create the data directory \/etc\/passwd\/m1: ENOTDIR/],
  ];
  for (const [name, body, args, message] of cases) {
    const run = await flotilla('master', '--config', clusterFile(name.replace(/ /g, '-'), body), ...args);
    assert.equal(run.code, 1, `${name}: exit code (${run.stderr})`);
    assert.match(run.stderr, message, name);
    assert.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line`);
    assert.doesNotMatch(run.stderr, /^\s+at /m, `${name}: no stack trace`);
  }
  const missing = await flotilla('master', '--config', join(scratch, 'nope.yaml'), '--name', 'm1');
  assert.match(missing.stderr, /cannot read the cluster file .*nope\.yaml: ENOENT/);
});

test('a port in use stops the master with one clear sentence', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address() as { port: number };
  try {
    const file = clusterFile('port', `cluster: t\n${SECRET}\nmasters:\n  - { name: m1, peer: "127.0.0.1:${port}", client: "127.0.0.1:${await freePort('127.0.0.1')}", data: port-d1 }\n`);
    const run = await flotilla('master', '--config', file, '--name', 'm1');
    assert.equal(run.code, 1);
    assert.equal(run.stderr.trim(), `flotilla: master m1 cannot serve peers on 127.0.0.1:${port}: it is already in use by another process`);
  } finally {
    blocker.close();
  }
});

test('flotilla up starts every master, reports the leader, status shows them, and Ctrl-C stops them all', async () => {
  const masters = [];
  for (let i = 1; i <= 3; i++) masters.push(`  - { name: m${i}, peer: "127.0.0.1:${await freePort('127.0.0.1')}", client: "127.0.0.1:${await freePort('127.0.0.1')}", data: up-d${i} }`);
  const file = clusterFile('up', `cluster: up-test\n${SECRET}\nmasters:\n${masters.join('\n')}\n`);
  const up = spawn(process.execPath, [BIN, 'up', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pids: number[] = [];
  const lines: string[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  createInterface({ input: up.stdout }).on('line', (line) => {
    lines.push(line);
    const pid = /started \(pid (\d+)\)/.exec(line);
    if (pid !== null) pids.push(Number(pid[1]));
    if (/is ready: m\d leads \(term \d+\)/.test(line)) ready();
  });
  try {
    await Promise.race([isReady, new Promise((_, reject) => setTimeout(() => reject(new Error(`not ready: ${lines.join(' | ')}`)), 30_000))]);
    assert.equal(pids.length, 3);
    type Status = { masters: { name: string; reachable: boolean; role: string; term: number; leader: string; commitIndex: number; appliedIndex: number; logSize: number }[] };
    // "ready" is printed once a leader is elected; a follower may learn the commit index a
    // heartbeat later, so ask again briefly before judging.
    let parsed!: Status;
    const caughtUp = (s: Status): boolean => s.masters.every((m) => m.reachable && m.term >= 2 && m.commitIndex >= 3 && m.appliedIndex >= 3 && m.logSize > 0);
    for (let i = 0; i < 20; i++) {
      const json = await flotilla('status', '--config', file, '-o', 'json');
      assert.equal(json.code, 0, json.stderr);
      parsed = JSON.parse(json.stdout) as Status;
      if (caughtUp(parsed)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(parsed.masters.map((m) => m.name), ['m1', 'm2', 'm3']);
    assert.ok(caughtUp(parsed), JSON.stringify(parsed));
    assert.equal(parsed.masters.filter((m) => m.role === 'leader').length, 1);
    assert.equal(new Set(parsed.masters.map((m) => m.leader)).size, 1, 'all follow the same leader');
    const table = await flotilla('status', '--config', file);
    assert.match(table.stdout, /^NAME\s+REACHABLE\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LOG$/m);
    const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
    up.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.ok(lines.includes('all masters stopped'), lines.join(' | '));
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `master pid ${pid} is gone`);
    const down = await flotilla('status', '--config', file, '-o', 'json');
    assert.equal(down.code, 1, 'no leader: status exits non-zero');
    assert.ok((JSON.parse(down.stdout) as { masters: { role: string }[] }).masters.every((m) => m.role === 'unreachable'));
  } finally {
    if (up.exitCode === null) up.kill('SIGKILL');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already stopped
      }
    }
  }
});

test('flotilla member adds a started master to a running cluster and removes the leader', async (t) => {
  const cluster = await ProcessCluster.create({ masters: 3, joiners: 1, proxied: false });
  t.after(() => cluster.stop());
  await Promise.all(['m1', 'm2', 'm3', 'm4'].map((n) => cluster.start(n)));
  await cluster.leader();
  const add = await flotilla('member', 'add', '--config', cluster.file, '--name', 'm4');
  assert.equal(add.code, 0, `${add.stdout}${add.stderr}`);
  assert.match(add.stdout, /m4 is now a voting member/);
  const statuses = await cluster.converged();
  assert.deepEqual([...statuses[0]!.voters!].sort(), ['m1', 'm2', 'm3', 'm4']);
  // The hardest removal: the current leader (Raft §6: it steps down once the change commits).
  const removed = await cluster.leader();
  const remove = await flotilla('member', 'remove', '--config', cluster.file, '--name', removed);
  assert.equal(remove.code, 0, `${remove.stdout}${remove.stderr}`);
  await cluster.kill(removed, 'SIGTERM');
  const leader = await cluster.leader();
  assert.notEqual(leader, removed);
  const after = (await cluster.statuses()).find((s) => s.name === leader)!;
  assert.deepEqual([...after.voters!].sort(), ['m1', 'm2', 'm3', 'm4'].filter((n) => n !== removed));
});

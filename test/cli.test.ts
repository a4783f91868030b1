// The flotilla command as a user runs it: real processes, their output and exit codes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ProcessCluster, freePort } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';
import { until } from './support/until.ts';

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

/** Pids of live processes whose environment holds `entry` (NAME=value). */
function withEnv(entry: string): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      return readFileSync(`/proc/${e}/environ`, 'utf8').split('\0').includes(entry) ? [Number(e)] : [];
    } catch {
      return [];
    }
  });
}

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
    ['unknown API limit', good().replace('masters:', 'apiServer: { maxInflight: 5 }\nmasters:'), ['--name', 'm1'], /apiServer has an unknown field "maxInflight" \(known: maxRequestsInFlight, maxMutatingRequestsInFlight, maxWatches, maxWatchesPerUser, requestTimeoutSeconds, maxConnections\)/],
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

test('a bad worker in the cluster file stops the agent with one clear sentence', async () => {
  const p1 = await freePort('127.0.0.1');
  const base = `cluster: t\n${SECRET}\njoinToken: 0123456789abcdef-join\nmasters:\n  - { name: m1, peer: "127.0.0.1:${p1}", client: "127.0.0.1:${p1 + 1}", api: "127.0.0.1:${p1 + 2}", data: d1 }\n`;
  const cases: [string, string, string[], RegExp][] = [
    ['unknown worker', `${base}workers:\n  - { name: w1, address: 127.0.0.2, data: w1 }\n`, ['--name', 'w9'], /has no worker named w9; it has w1/],
    ['no workers listed', base, ['--name', 'w1'], /lists no workers \(add a "workers:" section, or give --address and --data\)/],
    ['bad address', `${base}workers:\n  - { name: w1, address: localhost, data: w1 }\n`, ['--name', 'w1'], /workers\[0\]\.address must be an IPv4 address/],
    ['bad name', `${base}workers:\n  - { name: W_1, address: 127.0.0.2, data: w1 }\n`, ['--name', 'W_1'], /workers\[0\]\.name must be a node name/],
    ['bad taint', `${base}workers:\n  - { name: w1, address: 127.0.0.2, data: w1, taints: [{ key: a, effect: Sometimes }] }\n`, ['--name', 'w1'], /each taint needs a key, an optional value and an effect/],
    ['bad port range', `${base}workers:\n  - { name: w1, address: 127.0.0.2, data: w1, podPorts: 80-90 }\n`, ['--name', 'w1'], /podPorts must be a range like 20000-29999 within 1024-65535/],
    ['unknown field', `${base}workers:\n  - { name: w1, address: 127.0.0.2, data: w1, cpus: 4 }\n`, ['--name', 'w1'], /workers\[0\] has an unknown field "cpus"/],
    ['no join token', base.replace('joinToken: 0123456789abcdef-join\n', ''), ['--name', 'w1', '--address', '127.0.0.2', '--data', join(scratch, 'w1')], /has no joinToken, so no agent can join/],
  ];
  for (const [name, body, args, message] of cases) {
    const run = await flotilla('agent', '--config', clusterFile(`agent-${name.replace(/ /g, '-')}`, body), ...args);
    assert.equal(run.code, 1, `${name}: exit code (${run.stderr})`);
    assert.match(run.stderr, message, name);
    assert.equal(run.stderr.trim().split('\n').length, 1, `${name}: one line`);
  }
  const usage = await flotilla('agent', '--config', 'x.yaml');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /agent needs --config FILE and --name NAME/);
});

test('bash completion completes commands, kinds and output formats', async () => {
  const script = await flotilla('completion', 'bash');
  assert.equal(script.code, 0);
  const file = join(scratch, 'completion.bash');
  writeFileSync(file, script.stdout);
  const complete = (words: string[]) =>
    new Promise<string>((resolve, reject) => {
      const probe = `source ${JSON.stringify(file)}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}; _flotilla; echo "\${COMPREPLY[*]}"`;
      execFile('bash', ['-c', probe], (err, stdout) => (err === null ? resolve(stdout.trim()) : reject(err)));
    });
  assert.equal(await complete(['flotilla', 'ge']), 'get');
  assert.equal(await complete(['flotilla', 'get', 'dep']), 'deployments deploy');
  assert.equal(await complete(['flotilla', 'get', 'pods', '-o', 'y']), 'yaml');
  assert.equal(await complete(['flotilla', 'rollout', '']), 'status undo');
  assert.equal((await flotilla('completion', 'fish')).code, 2);
});

test('zsh completion (through bashcompinit) completes the same', { skip: existsSync('/usr/bin/zsh') || existsSync('/bin/zsh') ? false : 'zsh is not installed: sudo apt-get install -y zsh' }, async () => {
  const script = await flotilla('completion', 'zsh');
  const file = join(scratch, 'completion.zsh');
  writeFileSync(file, script.stdout);
  // As bashcompinit calls the function: with ksharrays (0-based arrays).
  const probe = `source ${JSON.stringify(file)}; setopt ksharrays; COMP_WORDS=(flotilla get dep); COMP_CWORD=2; _flotilla; echo "\${COMPREPLY[*]}"`;
  const out = await new Promise<string>((resolve, reject) => execFile('zsh', ['-f', '-c', probe], { env: { ...process.env, HOME: scratch } }, (err, stdout, stderr) => (err === null ? resolve(stdout.trim()) : reject(new Error(stderr)))));
  // zsh's compgen offers every candidate; its completion system then keeps those matching
  // what was typed. So: the kinds are offered (not the commands, not the flags).
  const offered = out.split(' ');
  assert.ok(offered.includes('deployments') && offered.includes('deploy') && offered.includes('pods'), out);
  assert.ok(!offered.includes('apply') && !offered.includes('--config'), out);
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
    assert.match(table.stdout, /^NAME\s+REACHABLE\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LOG\s+SERVING\s+ALARMS$/m);
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

test('flotilla up starts the workers too; a pod runs; Ctrl-C stops the pod, the agents and the masters; a second up brings it all back', async () => {
  const masters: string[] = [];
  for (let i = 1; i <= 3; i++) masters.push(`  - { name: m${i}, peer: "127.0.0.1:${await freePort('127.0.0.1')}", client: "127.0.0.1:${await freePort('127.0.0.1')}", api: "127.0.0.1:${await freePort('127.0.0.1')}", data: upw-d${i} }`);
  const token = 'up-workers-admin-token-0123';
  const file = clusterFile('up-workers', `cluster: up-workers\n${SECRET}\ntokens:\n  - { name: admin, token: ${token}, role: admin }\njoinToken: up-workers-join-token-0123\nmasters:\n${masters.join('\n')}\nworkers:\n  - { name: w1, address: 127.0.3.1, data: upw-w1 }\n`);
  // Left from an earlier cluster: --fresh starts from empty.
  mkdirSync(join(scratch, 'upw-d2'), { recursive: true });
  writeFileSync(join(scratch, 'upw-d2', 'stale'), 'old data');
  const up = spawn(process.execPath, [BIN, 'up', file, '--fresh'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pids = new Map<string, number>();
  const lines: string[] = [];
  createInterface({ input: up.stdout }).on('line', (line) => {
    lines.push(line);
    const started = /^(\w+) started \(pid (\d+)\)/.exec(line);
    if (started !== null) pids.set(started[1]!, Number(started[2]));
  });
  const marker = join(scratch, 'upw-marker');
  let podPid: number | undefined;
  let second: ReturnType<typeof spawn> | undefined;
  try {
    const deadline = Date.now() + 60_000;
    const api = (): HttpApi => new HttpApi([`https://${/api: "([^"]+)"/.exec(masters[0]!)![1]}`], token, readFileSync(join(scratch, 'upw-d1', 'api', 'ca.crt'), 'utf8'));
    let ready = false;
    while (!ready) {
      if (Date.now() > deadline) throw new Error(`w1 never became Ready: ${lines.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
      if (!pids.has('w1')) continue;
      // (The CA file appears once m1's API is up.)
      const nodes = await Promise.resolve()
        .then(() => api().call('GET', '/api/v1/nodes', undefined, undefined, 2000))
        .catch(() => undefined);
      ready = nodes?.status === 200 && nodes.json.items.some((n: any) => n.metadata.name === 'w1' && n.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    }
    await api().ok('POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'sleeper' }, spec: { containers: [{ name: 'c', command: ['sleep', '600'], env: [{ name: 'UP_TEST_MARKER', value: marker }] }] } }, 201);
    while (podPid === undefined) {
      if (Date.now() > deadline) throw new Error(`the pod never ran: ${JSON.stringify((await api().call('GET', '/api/v1/namespaces/default/pods/sleeper')).json.status)}`);
      await new Promise((r) => setTimeout(r, 100));
      podPid = withEnv(`UP_TEST_MARKER=${marker}`)[0];
    }
    assert.doesNotThrow(() => process.kill(podPid!, 0), 'the pod runs');
    assert.ok(!existsSync(join(scratch, 'upw-d2', 'stale')), '--fresh deleted the old data');
    await until('up says the workers are ready and how to start', () => lines.includes('workers registered and Ready: w1') && lines.includes(`admin token: ${token}`) && lines.some((l) => /^dashboard: (https:\/\/127\.0\.0\.1:\d+\/ui ?){3} /.test(l)) && lines.some((l) => /^ {2}npx flotilla apply -f examples\//.test(l)), 20_000);
    const exited = new Promise<number | null>((r) => up.once('exit', (code) => r(code)));
    up.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.ok(lines.includes('stopping the workers and their pods…') && lines.includes('all masters stopped'), lines.join(' | '));
    for (const [name, pid] of [...pids, ['pod', podPid] as const]) assert.throws(() => process.kill(pid, 0), /ESRCH/, `${name} (pid ${pid}) is gone`);

    // A second `up` (no --fresh) brings the cluster back with its objects: the pod runs again.
    pids.clear();
    const again = spawn(process.execPath, [BIN, 'up', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    second = again;
    createInterface({ input: again.stdout }).on('line', (line) => {
      lines.push(line);
      const started = /^(\w+) started \(pid (\d+)\)/.exec(line);
      if (started !== null) pids.set(started[1]!, Number(started[2]));
    });
    await until('the cluster is back with the pod running again', async () => {
      const pod = await Promise.resolve()
        .then(() => api().call('GET', '/api/v1/namespaces/default/pods/sleeper', undefined, undefined, 2000))
        .catch(() => undefined);
      if (pod?.status !== 200 || pod.json.status?.phase !== 'Running') return false;
      return (podPid = withEnv(`UP_TEST_MARKER=${marker}`)[0]) !== undefined;
    }, 60_000);
    const exitedAgain = new Promise<number | null>((r) => again.once('exit', (code) => r(code)));
    again.kill('SIGINT');
    assert.equal(await exitedAgain, 0);
    for (const [name, pid] of [...pids, ['pod', podPid] as const]) assert.throws(() => process.kill(pid, 0), /ESRCH/, `${name} (pid ${pid}) is gone after the second run`);
  } finally {
    if (up.exitCode === null) up.kill('SIGKILL');
    if (second !== undefined && second.exitCode === null) second.kill('SIGKILL');
    for (const pid of [...pids.values(), ...(podPid === undefined ? [] : [-podPid, podPid])]) {
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

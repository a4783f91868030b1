// `flotilla up` while the same cluster already runs from the same directories (issue 12: the
// second `npm start`). It used to report "cluster … is ready" (it was looking at the first
// cluster), start duplicate agents on the same data directories, which adopted the running
// agents' containers and stopped them when they stopped, and exit ~30 s later with "the data
// directory … is in use". Now every master and agent locks its data directory first thing, and
// a second `up` says at once that the cluster runs, with its pids, and changes nothing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';
import { until } from './support/until.ts';

const BIN = fileURLToPath(new URL('../packages/cli/bin/flotilla.mjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-up-twice-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const SECRET = 'secret: 0123456789abcdef-up-twice';
const TOKEN = 'up-twice-admin-token-0123';
const NAMES = ['m1', 'm2', 'm3', 'w1'] as const;

/** Runs `flotilla …` in its own process group (killed as a group if it outlives the test). */
function flotilla(groups: Set<number>, args: string[]): { proc: ChildProcess; lines: string[]; stderr: string[]; done: Promise<{ code: number | null; ms: number }> } {
  const t0 = Date.now();
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  groups.add(proc.pid!);
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const done = new Promise<{ code: number | null; ms: number }>((r) => proc.once('exit', (code) => r({ code, ms: Date.now() - t0 })));
  return { proc, lines, stderr, done };
}

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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** Within a bounded time, the second command's output, for the failure message. */
async function settled(run: ReturnType<typeof flotilla>, ms: number): Promise<{ code: number | null; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms: ${[...run.lines, ...run.stderr].join(' | ')}`)), ms)));
  try {
    return await Promise.race([run.done, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('a second flotilla up (and --fresh, and a second agent or master) on a running cluster says it runs, with its pids, at once, and changes nothing', { timeout: 180_000 }, async () => {
  const masters: string[] = [];
  for (let i = 1; i <= 3; i++) masters.push(`  - { name: m${i}, peer: "127.0.0.1:${await freePort('127.0.0.1')}", client: "127.0.0.1:${await freePort('127.0.0.1')}", api: "127.0.0.1:${await freePort('127.0.0.1')}", data: d/m${i} }`);
  const file = join(scratch, 'up-twice.yaml');
  writeFileSync(
    file,
    `cluster: up-twice\n${SECRET}\nraft: { tickMs: 25, electionTicks: 12, heartbeatTicks: 2 }\ntokens:\n  - { name: admin, token: ${TOKEN}, role: admin }\njoinToken: up-twice-join-token-0123\nmasters:\n${masters.join('\n')}\nworkers:\n  - { name: w1, address: 127.0.12.1, data: d/w1 }\n`,
  );
  const dataDir = (name: string): string => join(scratch, 'd', name);
  const groups = new Set<number>();
  const marker = join(scratch, 'pod-marker');
  let podPid: number | undefined;
  let api: HttpApi | undefined;
  const first = flotilla(groups, ['up', file]);
  try {
    const pids = new Map<string, number>();
    await until('the first cluster is up with w1 Ready', () => first.lines.includes('workers registered and Ready: w1') || (first.proc.exitCode !== null ? Promise.reject(new Error(`up exited: ${first.lines.join(' | ')}`)) : false), 90_000);
    for (const l of first.lines) {
      const m = /^(\w+) started \(pid (\d+)\)/.exec(l);
      if (m !== null) pids.set(m[1]!, Number(m[2]));
    }
    assert.deepEqual([...pids.keys()].sort(), [...NAMES]);
    api = new HttpApi([`https://${/api: "([^"]+)"/.exec(masters[0]!)![1]}`], TOKEN, readFileSync(join(dataDir('m1'), 'api', 'ca.crt'), 'utf8'));
    await api.ok('POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'sleeper' }, spec: { containers: [{ name: 'c', command: ['sleep', '600'], env: [{ name: 'UP_TWICE_MARKER', value: marker }] }] } }, 201);
    const running = await until('the pod runs', async () => {
      const pod = (await api!.call('GET', '/api/v1/namespaces/default/pods/sleeper', undefined, undefined, 2000)).json;
      if (pod.status?.phase !== 'Running') return undefined;
      podPid = withEnv(`UP_TWICE_MARKER=${marker}`)[0];
      return podPid === undefined ? undefined : pod;
    }, 60_000);
    const containerId: string = running.status.containerStatuses[0].containerID;
    const lockOf = (n: string): string | undefined => (existsSync(join(dataDir(n), 'flotilla.lock')) ? readFileSync(join(dataDir(n), 'flotilla.lock'), 'utf8') : undefined);
    const locks = new Map(NAMES.map((n) => [n, lockOf(n)]));
    const entries = new Map(NAMES.map((n) => [n, readdirSync(dataDir(n)).sort()]));
    const said = `cluster up-twice is already running (flotilla up pid ${first.proc.pid}): ${NAMES.map((n) => `${n} pid ${pids.get(n)}`).join(', ')}`;

    // The second `up`: refused at once, nothing started (no "starting …", no child), one sentence.
    const second = flotilla(groups, ['up', file]);
    const r2 = await settled(second, 20_000);
    assert.equal(r2.code, 1, [...second.lines, ...second.stderr].join(' | '));
    assert.deepEqual(second.lines, [], 'it printed no progress: it started nothing');
    assert.equal(second.stderr.length, 1, second.stderr.join(' | '));
    assert.ok(second.stderr[0]!.startsWith(`flotilla: ${said}; nothing was started or changed. Stop it first (Ctrl-C where it runs, or kill -INT ${first.proc.pid})`), second.stderr[0]);
    assert.ok(r2.ms < 10_000, `it answered in ${r2.ms} ms`);
    for (const n of NAMES) assert.equal(JSON.parse(locks.get(n) ?? '{}').pid, pids.get(n), `${n}'s lock names its pid`);

    // --fresh would delete every data directory: refused the same way, before deleting anything.
    const fresh = flotilla(groups, ['up', file, '--fresh']);
    assert.equal((await settled(fresh, 20_000)).code, 1);
    assert.deepEqual(fresh.lines, []);
    assert.ok(fresh.stderr[0]?.startsWith(`flotilla: ${said}; nothing was started, deleted or changed.`), fresh.stderr.join(' | '));

    // A second agent or master on a running one's directory: refused at once, naming the pid.
    const agent = flotilla(groups, ['agent', '--config', file, '--name', 'w1']);
    assert.equal((await settled(agent, 20_000)).code, 1);
    assert.match(agent.stderr.join('\n'), new RegExp(`^flotilla: agent w1: the data directory ${dataDir('w1')} is in use by another running agent: pid ${pids.get('w1')} \\(flotilla agent w1, since \\d\\d:\\d\\d:\\d\\d\\)$`));
    const master = flotilla(groups, ['master', '--config', file, '--name', 'm1']);
    assert.equal((await settled(master, 20_000)).code, 1);
    assert.match(master.stderr.join('\n'), new RegExp(`^flotilla: master m1: the data directory ${dataDir('m1')} is in use by another running master: pid ${pids.get('m1')} \\(flotilla master, since \\d\\d:\\d\\d:\\d\\d\\)$`));

    // The first cluster is untouched: the same processes, the same pod process, never restarted.
    await new Promise((r) => setTimeout(r, 2000));
    for (const n of NAMES) assert.ok(alive(pids.get(n)!), `${n} (pid ${pids.get(n)}) still runs`);
    assert.ok(first.proc.exitCode === null, `the first up still runs: ${first.lines.slice(-5).join(' | ')}`);
    assert.ok(alive(podPid!), `the pod's process (pid ${podPid}) still runs`);
    const pod = await api.ok('GET', '/api/v1/namespaces/default/pods/sleeper');
    assert.equal(pod.status.containerStatuses[0].restartCount, 0, 'the pod was never restarted');
    assert.equal(pod.status.containerStatuses[0].containerID, containerId);
    for (const n of NAMES) {
      assert.equal(lockOf(n), locks.get(n), `${n}'s lock is unchanged`);
      assert.deepEqual(readdirSync(dataDir(n)).sort(), entries.get(n), `nothing new in ${n}'s data directory`);
    }
    assert.ok(!first.lines.some((l) => /exited/.test(l)), first.lines.join(' | '));

    // Ctrl-C on the first stops it all, and lets go of every directory.
    first.proc.kill('SIGINT');
    assert.equal((await settled(first, 40_000)).code, 0);
    for (const [n, pid] of [...pids, ['pod', podPid!] as const]) assert.ok(!alive(pid), `${n} (pid ${pid}) is gone`);
    for (const n of NAMES) assert.ok(!existsSync(join(dataDir(n), 'flotilla.lock')), `${n}'s lock is released`);
  } finally {
    api?.close();
    for (const g of groups) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
    // Pods lead their own sessions: not in any group above.
    for (const pid of [...(podPid === undefined ? [] : [podPid]), ...withEnv(`UP_TWICE_MARKER=${marker}`)]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
});

// Probes against real HTTP and TCP servers on loopback and real processes: one attempt of each
// kind (success, failure, messages, timeouts, named ports, the process group killed on
// timeout), then the worker's schedule and thresholds (initial delay, success and failure
// thresholds, initial states, startup stopping once started, stop()).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanups, until } from './helpers.ts';
import type { Probe } from '@flotilla/api';
import { freePort } from '@flotilla/wire';
import { ProbeWorker, runProbe, type ProbeResult, type ProbeTarget } from '../src/probes.ts';


let nextHost = 60;
function host(): string {
  nextHost += 1;
  return `127.0.0.${nextHost}`;
}

/** An HTTP server whose answer the test sets; `null` status: never answer. */
async function httpServer() {
  const ip = host();
  const port = await freePort(ip);
  const state = { status: 200 as number | null, requests: [] as string[] };
  const sockets = new Set<Socket>();
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests.push(req.url ?? '');
    if (state.status === null) return;
    res.writeHead(state.status, { 'content-type': 'text/plain' });
    res.end(`status ${state.status}`);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(port, ip);
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { ip, port, state };
}

/** A target whose container port 8080 (named "http") listens on `port`. */
function target(ip: string, port: number, extra: Partial<ProbeTarget> = {}): ProbeTarget {
  return {
    host: ip,
    resolvePort: (p) => (p === 8080 || p === 'http' ? port : undefined),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...extra,
  };
}

const exec = (script: string, more: Partial<Probe> = {}): Probe => ({ exec: { command: ['/bin/sh', '-c', script] }, ...more });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('httpGet: 200-399 succeed, other statuses fail with the status, the path and named port are used', async () => {
  const s = await httpServer();
  const t = target(s.ip, s.port);
  assert.deepEqual(await runProbe({ httpGet: { port: 'http' } }, t), { ok: true, message: 'status 200' });
  s.state.status = 302;
  assert.equal((await runProbe({ httpGet: { port: 8080, path: '/healthz' } }, t)).ok, true);
  s.state.status = 500;
  assert.deepEqual(await runProbe({ httpGet: { port: 8080, path: 'ready?full=1' } }, t), { ok: false, message: 'HTTP probe failed with statuscode: 500' });
  s.state.status = 404;
  assert.equal((await runProbe({ httpGet: { port: 8080 } }, t)).ok, false);
  assert.deepEqual(s.state.requests, ['/', '/healthz', '/ready?full=1', '/']);
});

test('httpGet: a refused connection, an unknown port, another host and a server that never answers', async () => {
  const s = await httpServer();
  const deadIp = host();
  const deadPort = await freePort(deadIp);
  const refused = await runProbe({ httpGet: { port: 8080, path: '/healthz' } }, target(deadIp, deadPort));
  assert.deepEqual(refused, { ok: false, message: `Get "http://${deadIp}:${deadPort}/healthz": dial tcp ${deadIp}:${deadPort}: connect: connection refused` });
  const unknown = await runProbe({ httpGet: { port: 'metrics' } }, target(s.ip, s.port));
  assert.equal(unknown.ok, false);
  assert.match(unknown.message, /couldn't find port "metrics"/);
  // probe.httpGet.host wins over the pod's address.
  assert.equal((await runProbe({ httpGet: { port: 8080, host: s.ip } }, target(deadIp, s.port))).ok, true);
  s.state.status = null;
  const hung = await runProbe({ httpGet: { port: 8080 }, timeoutSeconds: 0.2 }, target(s.ip, s.port));
  assert.equal(hung.ok, false);
  assert.match(hung.message, /^Get "http:\/\/127\.0\.0\.\d+:\d+\/": context deadline exceeded/);
});

test('tcpSocket: an accepted connection succeeds, a refused one fails', async () => {
  const ip = host();
  const port = await freePort(ip);
  let accepted = 0;
  const server = createServer((s) => {
    accepted += 1;
    s.destroy();
  });
  server.listen(port, ip);
  await once(server, 'listening');
  cleanups.push(() => new Promise((r) => server.close(r)));
  assert.deepEqual(await runProbe({ tcpSocket: { port: 'http' } }, target(ip, port)), { ok: true, message: '' });
  await until('the server saw the probe', () => accepted === 1);
  const deadPort = await freePort(ip);
  assert.deepEqual(await runProbe({ tcpSocket: { port: 8080 } }, target(ip, deadPort)), { ok: false, message: `dial tcp ${ip}:${deadPort}: connect: connection refused` });
  assert.equal((await runProbe({ tcpSocket: { port: 9999 } }, target(ip, port))).ok, false);
});

test('exec: exit 0 succeeds with the output, another code fails, with the container env and working directory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-probe-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const t = target('127.0.0.1', 1, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GREETING: 'hello' }, cwd: dir });
  assert.deepEqual(await runProbe(exec('echo "$GREETING from $(pwd)"'), t), { ok: true, message: `hello from ${await realpath(dir)}` });
  assert.deepEqual(await runProbe(exec('exit 1'), t), { ok: false, message: 'command "/bin/sh -c exit 1" exited with code 1' });
  const loud = await runProbe(exec('echo not ready >&2; exit 3'), t);
  assert.equal(loud.ok, false);
  assert.match(loud.message, /exited with code 3: not ready$/);
  const missing = await runProbe({ exec: { command: ['/nonexistent/healthcheck'] } }, t);
  assert.equal(missing.ok, false);
  assert.match(missing.message, /^exec "\/nonexistent\/healthcheck": executable file not found/);
  assert.equal((await runProbe({ exec: { command: [] } }, t)).ok, false);
  assert.deepEqual(await runProbe({}, t), { ok: false, message: 'missing probe handler: set one of exec, httpGet or tcpSocket' });
});

test('exec: a command that outlives timeoutSeconds fails and its whole process group is killed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-probe-'));
  const pidFile = join(dir, 'pid');
  let pid: number | undefined;
  cleanups.push(async () => {
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const result = await runProbe(exec(`sleep 30 & echo $! > ${pidFile}; wait`, { timeoutSeconds: 0.3 }), target('127.0.0.1', 1));
  pid = Number(await readFile(pidFile, 'utf8'));
  assert.ok(pid > 0);
  assert.deepEqual(result, { ok: false, message: `command "/bin/sh -c sleep 30 & echo $! > ${pidFile}; wait" timed out after 0.3s` });
  await until('the background child of the probe is killed', () => !alive(pid!));
});

test('a cancelled probe returns at once and kills its process', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-probe-'));
  const pidFile = join(dir, 'pid');
  let pid: number | undefined;
  cleanups.push(async () => {
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const abort = new AbortController();
  const running = runProbe(exec(`echo $$ > ${pidFile}; exec sleep 30`, { timeoutSeconds: 60 }), target('127.0.0.1', 1), abort.signal);
  await until('the probe process runs', async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim() !== '');
  pid = Number(await readFile(pidFile, 'utf8'));
  abort.abort();
  assert.deepEqual(await running, { ok: false, message: 'probe cancelled' });
  await until('the probe process is killed', () => !alive(pid!));
});

/** A worker and what it reported, stopped after the test. */
function worker(kind: 'liveness' | 'readiness' | 'startup', probe: Probe, t: ProbeTarget) {
  const changes: { healthy: boolean; result: ProbeResult; attempts?: number }[] = [];
  let attempts = (): number => 0;
  const w = new ProbeWorker(kind, probe, t, (healthy, result) => changes.push({ healthy, result, attempts: attempts() }));
  cleanups.push(() => w.stop());
  return { w, changes, countAttempts: (f: () => number) => (attempts = f) };
}

test('readiness starts not ready and becomes ready after successThreshold successes in a row', async () => {
  const s = await httpServer();
  const { w, changes, countAttempts } = worker('readiness', { httpGet: { port: 8080 }, periodSeconds: 0.05, successThreshold: 2, failureThreshold: 1 }, target(s.ip, s.port));
  countAttempts(() => s.state.requests.length);
  assert.equal(w.healthy, false);
  w.start();
  await until('it becomes ready', () => changes.length === 1);
  assert.equal(w.healthy, true);
  assert.deepEqual(changes[0], { healthy: true, result: { ok: true, message: 'status 200' }, attempts: 2 });
  // failureThreshold 1: one failure is enough.
  s.state.status = 503;
  await until('it becomes not ready', () => changes.length === 2);
  assert.equal(w.healthy, false);
  assert.deepEqual(changes[1]?.result, { ok: false, message: 'HTTP probe failed with statuscode: 503' });
});

test('liveness starts healthy and fails only after failureThreshold failures in a row', async () => {
  const s = await httpServer();
  const { w, changes, countAttempts } = worker('liveness', { httpGet: { port: 8080 }, periodSeconds: 0.05, failureThreshold: 2 }, target(s.ip, s.port));
  countAttempts(() => s.state.requests.length);
  assert.equal(w.healthy, true);
  w.start();
  await until('some attempts succeeded', () => s.state.requests.length >= 3);
  assert.equal(changes.length, 0, 'successes do not report a change of a healthy probe');
  s.state.status = 500;
  const before = s.state.requests.length;
  await until('it becomes unhealthy', () => changes.length === 1);
  assert.equal(w.healthy, false);
  assert.equal(changes[0]?.healthy, false);
  // Attempts run one after another, and every request after `before` is answered 500.
  assert.equal(changes[0]?.attempts, before + 2);
});

test('an attempt that times out counts as a failure', async () => {
  const s = await httpServer();
  s.state.status = null;
  const { w, changes } = worker('liveness', { httpGet: { port: 8080 }, periodSeconds: 0.05, timeoutSeconds: 0.1, failureThreshold: 1 }, target(s.ip, s.port));
  w.start();
  await until('it becomes unhealthy', () => changes.length === 1);
  assert.match(changes[0]?.result.message ?? '', /context deadline exceeded/);
});

test('nothing runs before initialDelaySeconds', async () => {
  const s = await httpServer();
  const { w, changes } = worker('readiness', { httpGet: { port: 8080 }, periodSeconds: 0.05, initialDelaySeconds: 0.4 }, target(s.ip, s.port));
  const startedAt = Date.now();
  let firstAttemptAfter: number | undefined;
  w.start();
  await until('the first attempt', () => {
    if (s.state.requests.length > 0) firstAttemptAfter ??= Date.now() - startedAt;
    return changes.length === 1;
  });
  assert.ok(firstAttemptAfter !== undefined && firstAttemptAfter >= 390, `first attempt after ${firstAttemptAfter} ms`);
});

test('a startup probe starts unknown, reports failureThreshold failures, and stops probing once the container has started', async () => {
  const s = await httpServer();
  s.state.status = 500;
  const { w, changes, countAttempts } = worker('startup', { httpGet: { port: 8080 }, periodSeconds: 0.05, failureThreshold: 2 }, target(s.ip, s.port));
  countAttempts(() => s.state.requests.length);
  assert.equal(w.healthy, undefined);
  w.start();
  await until('it failed', () => changes.length === 1);
  assert.deepEqual(changes[0], { healthy: false, result: { ok: false, message: 'HTTP probe failed with statuscode: 500' }, attempts: 2 });
  s.state.status = 200;
  await until('it has started', () => changes.length === 2);
  assert.equal(w.healthy, true);
  const attempts = s.state.requests.length;
  // Absence needs a wait: four periods with no attempt.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(s.state.requests.length, attempts);
});

test('stop() stops probing and cancels the attempt in flight without reporting it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-probe-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'attempts');
  const { w, changes } = worker('liveness', exec(`echo x >> ${log}; sleep 0.3; exit 0`, { periodSeconds: 0.05, timeoutSeconds: 5, failureThreshold: 1 }), target('127.0.0.1', 1));
  w.start();
  await until('the first attempt runs', async () => (await readFile(log, 'utf8').catch(() => '')) !== '');
  w.stop();
  // A cancelled attempt is no failure: counted as one, it would make the container unhealthy
  // (and restarted) just for being stopped. Absence needs a wait: several periods.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(changes.length, 0);
  assert.equal(w.healthy, true);
  assert.equal(await readFile(log, 'utf8'), 'x\n');
});

test('stop() between attempts, or from onChange: no attempt runs afterwards', async () => {
  const s = await httpServer();
  let stoppedAt: number | undefined;
  // Stopped right after the attempt that made it ready, while the next one waits for its period.
  const between = new ProbeWorker('readiness', { httpGet: { port: 8080 }, periodSeconds: 0.05 }, target(s.ip, s.port), () => {
    setImmediate(() => {
      between.stop();
      stoppedAt = s.state.requests.length;
    });
  });
  cleanups.push(() => between.stop());
  between.start();
  await until('it is stopped', () => stoppedAt !== undefined);
  // Absence needs a wait: six periods.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.state.requests.length, stoppedAt);
  // Stopped from inside onChange, as the kubelet does when a liveness probe fails.
  s.state.status = 500;
  let changes = 0;
  const inside = new ProbeWorker('liveness', { httpGet: { port: 8080 }, periodSeconds: 0.05, failureThreshold: 1 }, target(s.ip, s.port), () => {
    changes += 1;
    inside.stop();
  });
  cleanups.push(() => inside.stop());
  const before = s.state.requests.length;
  inside.start();
  await until('it failed', () => changes === 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.state.requests.length, before + 1);
});

test('an exec probe whose command cannot even be passed to a process fails, and does not throw', async () => {
  const result = await runProbe({ exec: { command: ['a\0b'] } }, { host: '127.0.0.1', resolvePort: () => undefined, env: {} });
  assert.equal(result.ok, false);
  assert.match(result.message, /cannot run/);
});

// An agent's data directory is its alone: Agent.start locks it before the runtime looks at it
// (a second agent would adopt the first one's containers and stop them when it stops), holds
// it while it runs, and lets go when it fails to start.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, type ContainerRuntime } from '@flotilla/agent';
import { cleanups, until } from './helpers.ts';

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'flotilla-agent-lock-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A runtime that only counts what is asked of it. */
function countingRuntime(): { runtime: ContainerRuntime; calls: string[] } {
  const calls: string[] = [];
  const runtime = {
    name: 'counting',
    limits: { enforced: false, note: 'test' },
    recover: async () => (calls.push('recover'), []),
    close: async () => void calls.push('close'),
  } as unknown as ContainerRuntime;
  return { runtime, calls };
}

/** An API whose join endpoint answers `status` (mutable). */
async function joinServer(): Promise<{ url: string; status: { code: number }; joins: () => number }> {
  const status = { code: 503 };
  let joins = 0;
  const server: Server = createServer((req, res) => {
    joins++;
    req.resume();
    res.writeHead(status.code, { 'content-type': 'application/json' }).end(JSON.stringify({ message: status.code === 401 ? 'bad join token' : 'not yet' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, status, joins: () => joins };
}

const options = (dataDir: string, url: string, runtime: ContainerRuntime) => ({ name: 'w1', address: '127.0.0.1', apiUrls: [url], joinToken: 'join-token-0123456789', dataDir, runtime });

test('a data directory another live agent holds is refused at once, before the runtime recovers anything from it', async () => {
  const d = scratch();
  const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  cleanups.push(() => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  });
  await new Promise((r) => setTimeout(r, 100));
  const stat = readFileSync(`/proc/${holder.pid}/stat`, 'latin1');
  writeFileSync(join(d, 'flotilla.lock'), JSON.stringify({ pid: holder.pid, ppid: 1, host: hostname(), startTime: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19], by: 'flotilla agent w1', since: new Date().toISOString() }));
  const api = await joinServer();
  const { runtime, calls } = countingRuntime();
  const started = Agent.start(options(d, api.url, runtime));
  // A start that got past the lock (it did, before the lock existed) ends once the join is refused.
  cleanups.push(() => {
    api.status.code = 401;
    return started.catch(() => undefined);
  });
  const outcome = await Promise.race([started.then(() => 'started', (e: Error) => e), new Promise((r) => setTimeout(() => r('still starting after 3 s'), 3000))]);
  assert.ok(outcome instanceof Error, String(outcome));
  assert.match(outcome.message, new RegExp(`^the data directory ${d} of node w1 is in use by another running agent: pid ${holder.pid} \\(flotilla agent w1, since `));
  assert.deepEqual(calls, [], 'the runtime was never asked to recover (adopt) anything');
  assert.equal(api.joins(), 0, 'nor did it join');
  assert.deepEqual(readdirSync(d), ['flotilla.lock']);
  holder.kill('SIGKILL');
  await once(holder, 'exit');
});

test('the lock is held while the agent starts and let go when the start fails', async () => {
  const d = join(scratch(), 'w1'); // created by the agent
  const api = await joinServer();
  const first = countingRuntime();
  const starting = Agent.start(options(d, api.url, first.runtime));
  const failed = starting.then(() => undefined, (e: Error) => e);
  cleanups.push(() => {
    api.status.code = 401;
    return failed;
  });
  await until('the first agent tries to join', () => api.joins() > 0);
  assert.deepEqual(first.calls, ['recover']);
  assert.equal(JSON.parse(readFileSync(join(d, 'flotilla.lock'), 'utf8')).pid, process.pid);
  const second = countingRuntime();
  await assert.rejects(Agent.start(options(d, api.url, second.runtime)), /of node w1 is in use by another running agent: pid \d+ \(flotilla agent w1, since .*, this process\)/);
  assert.deepEqual(second.calls, []);
  api.status.code = 401;
  const err = await failed;
  assert.match(String(err), /the cluster refused node w1/);
  assert.deepEqual(first.calls, ['recover', 'close'], 'the runtime is closed before the lock goes');
  assert.ok(!existsSync(join(d, 'flotilla.lock')), 'released');
  mkdirSync(d, { recursive: true });
  // Free again: the next start takes it (and fails the same way against this API).
  const third = countingRuntime();
  await assert.rejects(Agent.start(options(d, api.url, third.runtime)), /refused node w1/);
  assert.deepEqual(third.calls, ['recover', 'close']);
});

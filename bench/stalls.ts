// How long one hostile request holds a master's event loop, one family at a time, on a
// 3-master cluster: the fuzz campaign (npm run fuzz) sends them all at once and names suspects;
// this separates them so each can be measured and profiled on its own.
//
//   npm run bench:stalls                    # every family, 3 times each
//   npm run bench:stalls -- --only big-list --runs 5
//   PROFILE=1 npm run bench:stalls -- --only big-list   # masters write .cpuprofile files
//
// Each request prints {bench: "stalls", family, run, status, ms, max_busy_ms, max_stall_ms}:
// the answer's status and time, and the longest "event loop stalled" any master logged while
// it ran (busyMs: CPU the master itself spent; stallMs: how late its timer was). 0 means no
// stall over the 100 ms the watchdog reports; leader_changes: "leader changed" lines logged
// meanwhile (a leader whose loop was held lost its term). Then one {summary: "median"} line per family.
// The snapshot family writes 70 MB (50 Events of 1.4 MB), past the 64 MiB after which every
// master snapshots its state, and waits 3 s. The watch families open many watches at once:
// 20 whose initial lists are the dozen big Events, or 30 that each get one big Event.
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AgentClient, joinCluster } from '@flotilla/api';
import { ADMIN_TOKEN, JOIN_TOKEN, ProcessCluster } from '../test/support/masters.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, only: { type: 'string' } } });
const runs = Number(values.runs);

const line = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

function http(base: string, method: string, path: string, body?: string, contentType = 'application/json'): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, agent: false, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': contentType } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a watch over HTTP; resolves once `events` lines have come (or `timeoutMs` passed), then hangs up. */
function watchHttp(base: string, path: string, events: number, timeoutMs = 60_000): { opened: Promise<void>; done: Promise<{ status: number; events: number }> } {
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  const done = new Promise<{ status: number; events: number }>((resolve, reject) => {
    const req = request(new URL(path, base), { agent: false, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
      opened();
      let seen = 0;
      let tail = '';
      const finish = (): void => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events: seen });
      };
      const timer = setTimeout(finish, timeoutMs);
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        tail += c;
        const lines = tail.split('\n');
        tail = lines.pop()!;
        seen += lines.filter((l) => l.startsWith('{"type":"ADDED"') || l.startsWith('{"type":"MODIFIED"')).length;
        if (seen >= events) finish();
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
  return { opened: openedP, done };
}

const profile = process.env['PROFILE'] === '1';
const profileDir = profile ? mkdtempSync(join(tmpdir(), 'flotilla-stalls-prof-')) : undefined;
const cluster = await ProcessCluster.create({ masters: 3, api: true, insecureHttp: true, proxied: false, nodeArgs: profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] });
let agent: AgentClient | undefined;
try {
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  const base = cluster.apiUrl('m1');
  const ns = (name: string) => http(base, 'POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  await ns('big');
  await ns('s');
  // A dozen Events of 1.4 MB: a list of them is over an agent's 16 MiB frame.
  const note = 'x'.repeat(1400 * 1024);
  for (let i = 0; i < 12; i++) {
    await http(base, 'POST', '/api/v1/namespaces/big/events', JSON.stringify({ apiVersion: 'v1', kind: 'Event', metadata: { name: `e${i}` }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'big' }, reason: 'Big', message: note, type: 'Normal' }));
  }
  await http(base, 'POST', '/api/v1/namespaces/s/services', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'keep' }, spec: { ports: [{ port: 80 }] } }));
  const token = await joinCluster(base, JOIN_TOKEN, 'stall-node');
  agent = new AgentClient({ apiUrls: [base], token });
  const a = agent;

  const manyKeys: Record<string, string> = {};
  for (let i = 0; i < 120_000; i++) manyKeys[`k${i}`] = 'v';
  const tenThousand = Object.fromEntries(Object.entries(manyKeys).slice(0, 10_000));
  const copyBomb = JSON.stringify([{ op: 'add', path: '/metadata/annotations', value: { a: 'A'.repeat(100) } }, ...Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/metadata', path: `/metadata/annotations/c${i}` }))]);
  const families: Record<string, () => Promise<{ status: number }>> = {
    'big-list-http': () => http(base, 'GET', '/api/v1/namespaces/big/events'),
    'big-list-agent': async () => ({ status: (await a.request('GET', '/api/v1/namespaces/big/events')).code }),
    'annotations-10k': () => http(base, 'PUT', '/api/v1/namespaces/s/services/keep', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'keep', annotations: tenThousand }, spec: { ports: [{ port: 80 }] } })),
    'values-99k': () => http(base, 'POST', '/apis/coordination.k8s.io/v1/namespaces/s/leases', JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { generateName: 'l-' }, spec: {}, fuzz: Array.from({ length: 99_000 }, () => 1) })),
    'big-list-agent-paged': async () => ({ status: (await a.request('GET', '/api/v1/namespaces/big/events', { query: { limit: '500' } })).code }),
    // 50 Events of 1.4 MB: past 64 MiB written, every master takes a snapshot at about once.
    snapshot: async () => {
      for (let i = 0; i < 50; i++) await http(base, 'POST', '/api/v1/namespaces/big/events', JSON.stringify({ apiVersion: 'v1', kind: 'Event', metadata: { generateName: 'snap-' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'big' }, reason: 'Big', message: note, type: 'Normal' }));
      await new Promise((r) => setTimeout(r, 3000));
      return { status: 201 };
    },
    'body-1.4mb': () => http(base, 'POST', '/apis/coordination.k8s.io/v1/namespaces/s/leases', JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { generateName: 'l-' }, spec: {}, fuzz: 'a'.repeat(1_400_000) })),
    'put-120k-keys': () => http(base, 'PUT', '/api/v1/namespaces/s/services/keep', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'keep', annotations: manyKeys }, spec: { ports: [{ port: 80 }] } })),
    'json-patch-copy-bomb': () => http(base, 'PATCH', '/api/v1/namespaces/s/services/keep', copyBomb, 'application/json-patch+json'),
    // Twenty watches at once, each starting with the list of the dozen Events of 1.4 MB.
    'watch-initial-x20': async () => {
      const ws = Array.from({ length: 20 }, () => watchHttp(base, '/api/v1/namespaces/big/events?watch=true&resourceVersion=0', 12));
      const got = await Promise.all(ws.map((w) => w.done));
      return { status: got.every((g) => g.status === 200 && g.events >= 12) ? 200 : 500 };
    },
    // Thirty watchers of a namespace, then one Event of 1.4 MB written to it: each hands it on.
    'watchers-x30-big-event': async () => {
      await ns('fan');
      const ws = Array.from({ length: 30 }, () => watchHttp(base, '/api/v1/namespaces/fan/events?watch=true', 1));
      await Promise.all(ws.map((w) => w.opened));
      await http(base, 'POST', '/api/v1/namespaces/fan/events', JSON.stringify({ apiVersion: 'v1', kind: 'Event', metadata: { generateName: 'fan-' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'fan' }, reason: 'Big', message: note, type: 'Normal' }));
      const got = await Promise.all(ws.map((w) => w.done));
      return { status: got.every((g) => g.status === 200 && g.events >= 1) ? 200 : 500 };
    },
    'add-arr-0-x10000': () => http(base, 'PATCH', '/api/v1/namespaces/s/services/keep', JSON.stringify([{ op: 'add', path: '/metadata/annotations', value: { a: 'b' } }, { op: 'add', path: '/spec/x', value: Array.from({ length: 50_000 }, () => 1) }, ...Array.from({ length: 9_990 }, () => ({ op: 'add', path: '/spec/x/0', value: 1 }))]), 'application/json-patch+json'),
  };
  for (const [family, send] of Object.entries(families)) {
    if (values.only !== undefined && !values.only.split(',').includes(family)) continue;
    const results: { ms: number; busy: number; stall: number }[] = [];
    for (let run = 1; run <= runs; run++) {
      const from = cluster.messages.length;
      const t0 = performance.now();
      const { status } = await send();
      const ms = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 300)); // the watchdog reports a stall once its timer runs
      const stalls = cluster.messages.slice(from).filter((m) => m.msg === 'event loop stalled');
      const leaderChanges = cluster.messages.slice(from).filter((m) => m.msg === 'leader changed').length;
      const busy = Math.max(0, ...stalls.map((s) => Number(s.line['busyMs'])));
      const stall = Math.max(0, ...stalls.map((s) => Number(s.line['stallMs'])));
      results.push({ ms, busy, stall });
      line({ bench: 'stalls', family, run, status, ms: Math.round(ms), max_busy_ms: busy, max_stall_ms: stall, leader_changes: leaderChanges, stalled: stalls.map((s) => `${s.name}:${String(s.line['busyMs'])}`) });
    }
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    line({ bench: 'stalls', family, summary: 'median', runs, ms: Math.round(median(results.map((r) => r.ms))), max_busy_ms: median(results.map((r) => r.busy)), max_stall_ms: median(results.map((r) => r.stall)) });
  }
} finally {
  agent?.close();
  // A profile is written when the process exits by itself (SIGTERM), not when it is killed.
  if (profileDir !== undefined) for (const n of cluster.names) await cluster.kill(n, 'SIGTERM');
  await cluster.stop();
  if (profileDir !== undefined) process.stderr.write(`profiles in ${profileDir}\n`);
}

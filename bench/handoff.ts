// How long scheduling stops when the leader dies: three masters, three fake nodes, a client
// creating a pod every 20 ms through the followers; --kills times, SIGKILL the leader and
// measure from the kill until the first pod created after the kill is bound by the new
// leader's scheduler (seen by polling the pod). A pod counts only if its create was sent
// after the killed process had exited, so the old leader cannot have bound it. The killed master is restarted before the
// next kill.
//
//   npm run bench:handoff                 # 10 kills
//   npm run bench:handoff -- --kills 20
//
// Prints one JSON line per kill and {bench: "handoff", kills, p50_handoff_ms, max_handoff_ms}.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ADMIN_TOKEN, ProcessCluster } from '../test/support/masters.ts';
import { HttpApi } from '../test/support/http-api.ts';
import { nodeObject } from '../test/support/fake-nodes.ts';

const { values } = parseArgs({ options: { kills: { type: 'string', default: '10' } } });
const kills = Number(values.kills);
if (!Number.isInteger(kills) || kills < 1) {
  process.stderr.write('--kills must be a positive integer\n');
  process.exit(2);
}
const line = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, nodeLifecycle: { gracePeriodSeconds: 3600, evictionSeconds: 3600 } });
const handoffs: number[] = [];
try {
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  const all = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
  for (const n of ['w1', 'w2', 'w3']) await all.ok('POST', '/api/v1/nodes', nodeObject(n, { cpu: '1000', memory: '1000Gi', pods: '100000' }), 201);
  all.close();
  let seq = 0;
  for (let k = 1; k <= kills; k++) {
    const leader = await cluster.leader();
    const followers = cluster.names.filter((n) => n !== leader);
    const api = new HttpApi(followers.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    // Warm up: the current leader schedules.
    const warm = `warm-${k}`;
    await api.ok('POST', '/api/v1/namespaces/default/pods', pod(warm), 201);
    await waitBound(api, warm, 10_000);
    let killedAt = 0;
    // Only pods sent once the old leader's process is gone count: none of them can have
    // been bound by it.
    let exitedAt = Number.POSITIVE_INFINITY;
    let measured: Promise<number> | undefined;
    let creating = true;
    const creator = (async () => {
      while (creating) {
        const name = `p${seq++}`;
        const sentAt = performance.now();
        const answer = await api.call('POST', '/api/v1/namespaces/default/pods', pod(name), 'application/json', 10_000).catch(() => undefined);
        // The first pod whose create was sent after the kill and acknowledged.
        if (answer?.status === 201 && sentAt > exitedAt && measured === undefined) measured = waitBound(api, name, 30_000).then((t) => t - killedAt);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    killedAt = performance.now();
    await cluster.kill(leader, 'SIGKILL');
    exitedAt = performance.now();
    while (measured === undefined) await new Promise((r) => setTimeout(r, 5));
    const ms = await measured;
    creating = false;
    await creator;
    handoffs.push(ms);
    line({ bench: 'handoff', kill: k, killed: leader, handoff_ms: Math.round(ms) });
    await cluster.start(leader);
    await cluster.apiReady(leader);
    await cluster.converged();
    api.close();
  }
} finally {
  await cluster.stop();
}
const sorted = [...handoffs].sort((a, b) => a - b);
line({ bench: 'handoff', kills, p50_handoff_ms: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!), max_handoff_ms: Math.round(sorted[sorted.length - 1]!) });
process.exit(0);

function pod(name: string): object {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '1'] }] } };
}

/** Polls the pod until it has a node; returns when that was seen (performance.now()). */
async function waitBound(api: HttpApi, name: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const a = await api.call('GET', `/api/v1/namespaces/default/pods/${name}`).catch(() => undefined);
    if (a?.status === 200 && a.json.spec.nodeName !== undefined) return performance.now();
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`pod ${name} was not bound within ${timeoutMs} ms`);
}

// The scheduler on a 3-master cluster: --nodes fake nodes (Nodes written through the API,
// no agents) and --pods pending pods created through the API by 64 concurrent clients; the
// leader's scheduler binds them.
//
//   npm run bench:scheduler                          # 1,000 nodes, 10,000 pods
//   npm run bench:scheduler -- --nodes 1000 --pods 10000 --runs 3
//
// Two modes, each run on a fresh cluster:
// - mode "pipeline": the nodes are schedulable and the pods are created as fast as 64
//   clients can; pods_per_s is pods divided by the time from the first create to the last
//   bind, p99_bind_ms the 99th percentile of (bound seen − create acknowledged), create_per_s
//   how fast the pods could be created at all. When create_per_s ≈ pods_per_s, creating the
//   pods (not the scheduler) sets the pace.
// - mode "backlog": the nodes are cordoned (spec.unschedulable) while every pod is created,
//   so all wait; then all nodes are uncordoned at once (64 clients) and pods_per_s is pods
//   divided by the time from the first uncordon to the last bind: the scheduler's own rate.
// A watch on a follower sees each pod get its node. Prints one JSON line per run and mode,
// and a median line per mode {bench: "scheduler", mode, nodes, pods, pods_per_s, p99_bind_ms, …}.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ADMIN_TOKEN, ProcessCluster } from '../test/support/masters.ts';
import { HttpApi } from '../test/support/http-api.ts';
import { nodeObject } from '../test/support/fake-nodes.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '1000' }, pods: { type: 'string', default: '10000' }, runs: { type: 'string', default: '1' }, clients: { type: 'string', default: '64' } } });
const nodeCount = Number(values.nodes);
const podCount = Number(values.pods);
const runs = Number(values.runs);
const clients = Number(values.clients);
if (![nodeCount, podCount, runs, clients].every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write('--nodes, --pods, --runs and --clients must be positive integers\n');
  process.exit(2);
}

const line = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

async function pool(n: number, total: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < total) await work(next++);
  }));
}

type Mode = 'pipeline' | 'backlog';

async function run(index: number, mode: Mode): Promise<Record<string, number>> {
  // Fake nodes renew no Lease: a long grace period keeps node lifecycle from evicting them.
  const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, nodeLifecycle: { gracePeriodSeconds: 3600, evictionSeconds: 3600 }, apiServer: { maxMutatingRequestsInFlight: 1000 } });
  try {
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    const leader = await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    const followers = cluster.names.filter((n) => n !== leader);
    const api = new HttpApi(followers.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    await pool(clients, nodeCount, async (i) => {
      const node = nodeObject(`node-${i}`, { cpu: '32', memory: '128Gi', pods: '110' }) as { spec: { unschedulable?: boolean } };
      if (mode === 'backlog') node.spec.unschedulable = true;
      await api.ok('POST', '/api/v1/nodes', node, 201);
    });
    const ns = `bench${index}`;
    await api.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, 201);
    const acked = new Map<string, number>();
    const bound = new Map<string, number>();
    let allBound!: () => void;
    const done = new Promise<void>((r) => (allBound = r));
    const watcher = new HttpApi([cluster.apiUrl(followers[1] ?? followers[0]!)], ADMIN_TOKEN, cluster.caCert());
    const stop = watcher.watch(`/api/v1/namespaces/${ns}/pods`, '0', (type, pod) => {
      const name = pod.metadata.name as string;
      if (type !== 'DELETED' && pod.spec.nodeName !== undefined && !bound.has(name)) {
        bound.set(name, performance.now());
        if (bound.size === podCount) allBound();
      }
    });
    await new Promise((r) => setTimeout(r, 500)); // the watch is open
    const start = performance.now();
    await pool(clients, podCount, async (i) => {
      const name = `p${i}`;
      await api.ok('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '1'], resources: { requests: { cpu: '100m', memory: '128Mi' } } }] } }, 201);
      acked.set(name, performance.now());
    });
    const created = performance.now();
    let uncordoned = start;
    if (mode === 'backlog') {
      if (bound.size > 0) throw new Error(`${bound.size} pods were bound to cordoned nodes`);
      uncordoned = performance.now();
      await pool(clients, nodeCount, async (i) => {
        await api.ok('PATCH', `/api/v1/nodes/node-${i}`, { spec: { unschedulable: false } }, 200, 'application/merge-patch+json');
      });
    }
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${bound.size} of ${podCount} pods were bound within 300 s`)), 300_000))]);
    stop();
    watcher.close();
    api.close();
    const last = Math.max(...bound.values());
    const latencies = [...bound].map(([name, t]) => t - Math.max(uncordoned, acked.get(name) ?? t)).sort((a, b) => a - b);
    const result = {
      nodes: nodeCount,
      pods: podCount,
      pods_per_s: Math.round(podCount / ((last - uncordoned) / 1000)),
      create_per_s: Math.round(podCount / ((created - start) / 1000)),
      p50_bind_ms: Math.round(latencies[Math.floor(latencies.length * 0.5)]! * 10) / 10,
      p99_bind_ms: Math.round(latencies[Math.floor(latencies.length * 0.99)]! * 10) / 10,
    };
    line({ bench: 'scheduler', mode, run: index + 1, ...result });
    return result;
  } finally {
    await cluster.stop();
  }
}

for (const mode of ['pipeline', 'backlog'] as const) {
  const results: Record<string, number>[] = [];
  for (let i = 0; i < runs; i++) results.push(await run(i, mode));
  const median = [...results].sort((a, b) => a['pods_per_s']! - b['pods_per_s']!)[Math.floor((results.length - 1) / 2)]!;
  line({ bench: 'scheduler', mode, summary: 'median', runs, ...median });
}
process.exit(0);

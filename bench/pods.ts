// Pod start-up on real agents: 3 masters and 2 worker agents (processes on loopback), then
// --pods pods (default 200, each a `sleep` process) created through the API by 16 clients,
// after an unmeasured warm-up wave of 100 pods in another namespace.
// Start-up time of a pod is from sending its create to seeing it Running in a watch (on a
// follower), as Kubernetes' pod start-up SLO (p99 ≤ 5 s). Prints one JSON line per run and a
// median line: {bench: "pods", pods, p50_startup_ms, p99_startup_ms, max_startup_ms,
// p50_bound_ms (create to bound to a node), create_s (how long sending the creates took),
// cpu_ms_masters / _agents / _bench (CPU time each group used from the first create to the last
// pod Running: where the two cores went),
// agent_peak_rss_mb, master_peak_rss_mb} (peak RSS = the largest VmHWM of any agent / master).
//
//   npm run bench:pods
//   npm run bench:pods -- --pods 200 --runs 3
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ADMIN_TOKEN, POD_MARKER, ProcessCluster } from '../test/support/masters.ts';
import { HttpApi } from '../test/support/http-api.ts';
import { until } from '../test/support/until.ts';

const { values } = parseArgs({ options: { pods: { type: 'string', default: '200' }, runs: { type: 'string', default: '1' }, clients: { type: 'string', default: '16' } } });
const podCount = Number(values.pods);
const runs = Number(values.runs);
const clients = Number(values.clients);
if (![podCount, runs, clients].every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write('--pods, --runs and --clients must be positive integers\n');
  process.exit(2);
}

const line = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** CPU time (user + system) a process has used so far, in ms (USER_HZ = 100). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The peak resident set (VmHWM) of a process, in MiB. */
function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Math.round(Number(m[1]) / 1024);
}

/**
 * Creates `count` pods in `namespace` (by `clients` concurrent clients) and waits until a watch
 * on `follower` has seen each Running; returns the per-pod times (sorted, ms).
 */
async function wave(cluster: ProcessCluster, api: HttpApi, follower: string, namespace: string, count: number): Promise<{ startup: number[]; binding: number[]; createMs: number[]; sent: Map<string, number> }> {
  if (namespace !== 'default') await api.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, 201);
  const sent = new Map<string, number>();
  const running = new Map<string, number>();
  const bound = new Map<string, number>();
  const createMs: number[] = [];
  const watcher = new HttpApi([cluster.apiUrl(follower)], ADMIN_TOKEN, cluster.caCert());
  const stop = watcher.watch(`/api/v1/namespaces/${namespace}/pods`, '', (type, pod) => {
    const name = pod.metadata.name as string;
    if (type === 'DELETED') return;
    if (pod.spec?.nodeName !== undefined && !bound.has(name)) bound.set(name, performance.now());
    if (pod.status?.phase === 'Running' && !running.has(name)) running.set(name, performance.now());
  });
  await new Promise((r) => setTimeout(r, 500)); // the watch is open
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < count) {
        const name = `p-${next++}`;
        sent.set(name, performance.now());
        // POD_MARKER: the harness finds (and stops) pod processes by it.
        const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'bench' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'sleep', image: 'none', command: ['sleep', '3600'], env: [{ name: POD_MARKER, value: cluster.dir }], resources: { requests: { cpu: '1m', memory: '1Mi' } } }] } };
        const t0 = performance.now();
        await api.ok('POST', `/api/v1/namespaces/${namespace}/pods`, pod, 201);
        createMs.push(performance.now() - t0);
      }
    }),
  );
  await until(`all ${count} pods of ${namespace} are Running`, () => running.size >= count, 120_000);
  stop();
  watcher.close();
  const startup = [...sent].map(([name, t]) => running.get(name)! - t).sort((a, b) => a - b);
  const binding = [...sent].map(([name, t]) => (bound.get(name) ?? running.get(name)!) - t).sort((a, b) => a - b);
  return { startup, binding, createMs: createMs.sort((a, b) => a - b), sent };
}

async function run(index: number): Promise<Record<string, number>> {
  const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, workers: 2, apiServer: { maxMutatingRequestsInFlight: 1000 }, ...(process.env['FLOTILLA_BENCH_PROFILE'] === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env['FLOTILLA_BENCH_PROFILE']}`] }) });
  try {
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    const leader = await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    await Promise.all(cluster.workers.map((w) => cluster.startAgent(w.name)));
    const follower = cluster.names.find((n) => n !== leader)!;
    const api = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    await until('both nodes are Ready', async () => {
      const nodes = (await api.ok('GET', '/api/v1/nodes')).items as any[];
      return nodes.length === 2 && nodes.every((n) => n.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    });
    // A first wave warms the masters and agents up (JIT, connections) and is not measured:
    // the figures are of a cluster that has run pods before, not of its first second.
    await wave(cluster, api, follower, 'warmup', Math.min(100, podCount));
    // …and goes away again (each node takes 110 pods, as a kubelet).
    await api.ok('DELETE', '/api/v1/namespaces/warmup', undefined, 200);
    await until('the warm-up pods are gone', async () => (await api.call('GET', '/api/v1/namespaces/warmup')).status === 404, 60_000);
    const cpu = (): { masters: number; agents: number; bench: number } => ({
      masters: cluster.masters.reduce((t, m) => t + cpuMs(m.proc?.pid), 0),
      agents: cluster.workers.reduce((t, w) => t + cpuMs(cluster.agentPid(w.name)), 0),
      bench: cpuMs(process.pid),
    });
    const cpuBefore = cpu();
    const { startup, binding, createMs, sent } = await wave(cluster, api, follower, 'default', podCount);
    const cpuAfter = cpu();
    const result = {
      pods: podCount,
      p50_startup_ms: Math.round(percentile(startup, 50)),
      p99_startup_ms: Math.round(percentile(startup, 99)),
      max_startup_ms: Math.round(startup[startup.length - 1]!),
      p50_bound_ms: Math.round(percentile(binding, 50)),
      p50_create_ms: Math.round(percentile(createMs, 50)),
      p99_create_ms: Math.round(percentile(createMs, 99)),
      create_s: Math.round((Math.max(...sent.values()) - Math.min(...sent.values()))) / 1000,
      cpu_ms_masters: cpuAfter.masters - cpuBefore.masters,
      cpu_ms_agents: cpuAfter.agents - cpuBefore.agents,
      cpu_ms_bench: cpuAfter.bench - cpuBefore.bench,
      agent_peak_rss_mb: Math.max(...cluster.workers.map((w) => peakRssMb(cluster.agentPid(w.name)))),
      master_peak_rss_mb: Math.max(...cluster.masters.map((m) => peakRssMb(m.proc?.pid))),
    };
    line({ bench: 'pods', run: index, ...result });
    api.close();
    // FLOTILLA_BENCH_PROFILE=DIR: masters and agents write CPU profiles there when they stop cleanly.
    if (process.env['FLOTILLA_BENCH_PROFILE'] !== undefined) {
      await Promise.all(cluster.workers.map((w) => cluster.killAgent(w.name, 'SIGTERM')));
      await Promise.all(cluster.names.map((n) => cluster.kill(n, 'SIGTERM')));
    }
    return result;
  } finally {
    await cluster.stop();
  }
}

const results: Record<string, number>[] = [];
for (let i = 0; i < runs; i++) results.push(await run(i));
const median = [...results].sort((a, b) => a['p99_startup_ms']! - b['p99_startup_ms']!)[Math.floor((results.length - 1) / 2)]!;
line({ bench: 'pods', summary: 'median', runs, ...median });

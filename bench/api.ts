// The Kubernetes API of a 3-master cluster: pod creates per second and their latency at 1
// and 64 concurrent clients, and list latency with 10,000 pods stored.
//
//   npm run bench:api                       # 5 s per measurement, 3 runs, 10,000 pods to list
//   npm run bench:api -- --seconds 10 --runs 5 --pods 10000
//
// Three master processes on loopback serve HTTPS; clients keep their connections alive and
// are spread over the three masters (a create through a follower is forwarded to the leader
// inside the cluster). Each measurement prints {bench: "api", op, clients, run, ops_per_s,
// p50_ms, p99_ms, cpu_ms_per_op: {masters, client}} (CPU time all three masters, and this client
// process, spent per create); then per op and client count the median run ({…, summary: "median"}).
// Ops: create_pod (POST one pod); list_pods (GET all pods of a namespace holding --pods pods,
// one JSON body, by one client); list_pods_page500 (the same read in pages of 500, as kubectl
// does).
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ADMIN_TOKEN, ProcessCluster } from '../test/support/masters.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, runs: { type: 'string', default: '3' }, pods: { type: 'string', default: '10000' }, clients: { type: 'string', default: '1,64' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const podCount = Number(values.pods);
const clientCounts = values.clients.split(',').map(Number);
if (!(seconds > 0) || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(podCount) || podCount < 1 || clientCounts.some((c) => !Number.isInteger(c) || c < 1)) {
  process.stderr.write('--seconds must be positive; --runs and --pods positive integers; --clients a comma-separated list of positive integers\n');
  process.exit(2);
}

interface Result {
  readonly status: number;
  readonly body: string;
}

const line = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

function pod(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'bench', tier: 'web' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'busybox:1.36',
          command: ['httpd', '-f', '-p', '8080'],
          ports: [{ name: 'http', containerPort: 8080 }],
          env: [{ name: 'MODE', value: 'bench' }],
          resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 5 },
        },
      ],
      restartPolicy: 'Always',
    },
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false });
const agents = new Map<string, Agent>();
try {
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  const ca = cluster.caCert();
  for (const n of cluster.names) agents.set(n, new Agent({ keepAlive: true, maxSockets: 256, ca }));

  // A request sent on a kept-alive socket the server closed meanwhile fails with ECONNRESET
  // before the server read it: sent again once on a new socket, as Node's documentation advises
  // (the server keeps idle connections 120 s, so this is for the race, not the rule).
  const call = async (master: string, method: string, path: string, body?: string): Promise<Result> => {
    try {
      return await callOnce(master, method, path, body);
    } catch (err) {
      if ((err as { reused?: boolean }).reused !== true) throw err;
      return callOnce(master, method, path, body);
    }
  };
  const callOnce = (master: string, method: string, path: string, body?: string): Promise<Result> =>
    new Promise((resolve, reject) => {
      const req = request(
        `${cluster.apiUrl(master)}${path}`,
        {
          method,
          agent: agents.get(master)!,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reused: req.reusedSocket && err.code === 'ECONNRESET' })));
      if (body !== undefined) req.write(body);
      req.end();
    });
  const must = async (what: string, p: Promise<Result>, code: number): Promise<Result> => {
    const r = await p;
    if (r.status !== code) throw new Error(`${what}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    return r;
  };
  for (const ns of ['bench', 'listed']) await must(`create namespace ${ns}`, call('m1', 'POST', '/api/v1/namespaces', JSON.stringify({ metadata: { name: ns } })), 201);

  let serial = 0;
  type Measured = { ops_per_s: number; p50_ms: number; p99_ms: number; cpu_ms_per_op?: { masters: number; client: number } };
  /** CPU the masters and this client process spent per operation while `fn` ran. */
  const cpu = async <T,>(fn: () => Promise<T>, ops: (t: T) => number): Promise<[T, { masters: number; client: number }]> => {
    const m0 = cluster.cpuMs();
    const c0 = process.cpuUsage();
    const t = await fn();
    const c1 = process.cpuUsage(c0);
    const n = ops(t);
    return [t, { masters: +((cluster.cpuMs() - m0) / n).toFixed(3), client: +((c1.user + c1.system) / 1000 / n).toFixed(3) }];
  };
  const createLoad = async (clients: number, durationMs: number): Promise<Measured> => {
    const [r, cpuPerOp] = await cpu(() => createRun(clients, durationMs), (x) => x.count);
    return { ops_per_s: r.ops_per_s, p50_ms: r.p50_ms, p99_ms: r.p99_ms, cpu_ms_per_op: cpuPerOp };
  };
  const createRun = async (clients: number, durationMs: number): Promise<{ count: number; ops_per_s: number; p50_ms: number; p99_ms: number }> => {
    const latencies: number[] = [];
    const end = performance.now() + durationMs;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const master = cluster.names[i % cluster.names.length]!;
        while (performance.now() < end) {
          const t0 = performance.now();
          await must('create pod', call(master, 'POST', '/api/v1/namespaces/bench/pods', pod(`p-${serial++}`)), 201);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return { count: latencies.length, ops_per_s: Math.round(latencies.length / elapsed), p50_ms: +percentile(latencies, 50).toFixed(2), p99_ms: +percentile(latencies, 99).toFixed(2) };
  };

  const results = new Map<string, Measured[]>();
  const record = (op: string, clients: number, run: number, r: Measured): void => {
    line({ bench: 'api', op, clients, run, ...r });
    const key = `${op}/${clients}`;
    results.set(key, [...(results.get(key) ?? []), r]);
  };

  await createLoad(16, 1000); // warm up connections and code paths
  for (let run = 1; run <= runs; run++) {
    for (const clients of clientCounts) record('create_pod', clients, run, await createLoad(clients, seconds * 1000));
  }

  // Fill a namespace with exactly --pods pods (64 writers), then time lists of it.
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const master = cluster.names[i % cluster.names.length]!;
      for (let k = next++; k < podCount; k = next++) await must('fill', call(master, 'POST', '/api/v1/namespaces/listed/pods', pod(`l-${String(k).padStart(6, '0')}`)), 201);
    }),
  );
  const listOnce = async (master: string, limit: number): Promise<number> => {
    let count = 0;
    let token = '';
    do {
      const q = `${limit > 0 ? `limit=${limit}` : ''}${token === '' ? '' : `&continue=${encodeURIComponent(token)}`}`;
      const r = await must('list', call(master, 'GET', `/api/v1/namespaces/listed/pods${q === '' ? '' : `?${q}`}`), 200);
      const list = JSON.parse(r.body) as { items: unknown[]; metadata: { continue?: string } };
      count += list.items.length;
      token = list.metadata.continue ?? '';
    } while (token !== '');
    return count;
  };
  for (const [op, limit] of [
    ['list_pods', 0],
    ['list_pods_page500', 500],
  ] as const) {
    for (let run = 1; run <= runs; run++) {
      const latencies: number[] = [];
      const started = performance.now();
      for (let i = 0; i < 20; i++) {
        const master = cluster.names[i % cluster.names.length]!;
        const t0 = performance.now();
        const n = await listOnce(master, limit);
        latencies.push(performance.now() - t0);
        if (n !== podCount) throw new Error(`the list returned ${n} pods, not ${podCount}`);
      }
      const elapsed = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      record(op, 1, run, { ops_per_s: +(latencies.length / elapsed).toFixed(2), p50_ms: +percentile(latencies, 50).toFixed(1), p99_ms: +percentile(latencies, 99).toFixed(1) });
    }
  }
  for (const [key, rs] of results) {
    const [op, clients] = key.split('/');
    const median = [...rs].sort((a, b) => a.ops_per_s - b.ops_per_s)[Math.floor((rs.length - 1) / 2)]!;
    const p99s = rs.map((r) => r.p99_ms).sort((a, b) => a - b);
    line({ bench: 'api', op, clients: Number(clients), summary: 'median', runs: rs.length, ...median, median_p99_ms: p99s[Math.floor((p99s.length - 1) / 2)], pods_stored: op!.startsWith('list') ? podCount : undefined });
  }
} finally {
  for (const a of agents.values()) a.destroy();
  await cluster.stop();
}

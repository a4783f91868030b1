// Key-value throughput and latency of a 3-master Flotilla cluster, side by side with a
// 3-member etcd when `etcd` is on the PATH (Debian: apt-get install etcd-server).
//
//   npm run bench:kv                        # 1, 16, 64, 256 clients; 5 s per measurement; 3 runs
//   npm run bench:kv -- --seconds 10 --clients 64 --runs 5
//   npm run bench:kv -- --ref f18d6aa       # also this repository at another commit, side by side
//
// With --ref, a third cluster runs the masters (and client) of that commit, from a git worktree
// in a temporary directory (npm ci'd there, removed afterwards), measured in the same
// alternation: {bench, clients, ratio_vs_ref} is this tree's median ops/s over that one's.
// Both clusters run on loopback at the same time, with fsync on (etcd always syncs its WAL;
// Flotilla syncs each batch), and are measured in alternation, `--runs` times, so machine noise
// hits both. Each measurement prints {bench, system, clients, run, ops_per_s, p50_ms, p99_ms};
// then per bench and client count one line per system with the median run
// ({…, summary: "median"}) and {bench, clients, ratio_vs_etcd}: Flotilla's median ops/s
// divided by etcd's.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { KvClient } from '@flotilla/store';
import { ProcessCluster, freePort } from '../test/support/masters.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, clients: { type: 'string', default: '1,16,64,256' }, runs: { type: 'string', default: '3' }, ref: { type: 'string' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const clientCounts = values.clients.split(',').map(Number);
if (!(seconds > 0) || !Number.isInteger(runs) || runs < 1 || clientCounts.some((c) => !Number.isInteger(c) || c < 1)) {
  process.stderr.write('--seconds must be positive, --runs a positive integer and --clients a comma-separated list of positive integers\n');
  process.exit(2);
}

interface System {
  readonly name: string;
  put(i: number, key: string, value: Uint8Array): Promise<unknown>;
  get(i: number, key: string, serializable: boolean): Promise<unknown>;
  close(): Promise<void>;
}

const POOL = 4;
const value = new Uint8Array(256).map((_, i) => (i * 31) & 0xff);

async function flotilla(): Promise<System> {
  const cluster = await ProcessCluster.create({ masters: 3, proxied: false });
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  const pool = Array.from({ length: POOL }, (_, i) => new KvClient({ endpoints: cluster.clientUrls(), secret: cluster.secret, name: `bench-${i}`, timeoutMs: 30_000 }));
  return {
    name: 'flotilla',
    put: (i, key, v) => pool[i % POOL]!.put(key, v),
    get: (i, key, serializable) => pool[i % POOL]!.get(key, { serializable }),
    close: async () => {
      for (const c of pool) c.close();
      await cluster.stop();
    },
  };
}

/** This repository at commit `ref`, from a worktree of its own. */
async function flotillaAt(ref: string): Promise<System> {
  const repo = dirname(dirname(fileURLToPath(import.meta.url)));
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-ref-'));
  execFileSync('git', ['worktree', 'add', '--detach', dir, ref], { cwd: repo, stdio: 'ignore' });
  const remove = (): void => {
    execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: repo, stdio: 'ignore' });
  };
  try {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'ignore' });
    const { ProcessCluster: Cluster } = (await import(join(dir, 'test/support/masters.ts'))) as { ProcessCluster: typeof ProcessCluster };
    const { KvClient: Client } = (await import(join(dir, 'packages/store/src/index.ts'))) as { KvClient: typeof KvClient };
    const cluster = await Cluster.create({ masters: 3, proxied: false });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    const pool = Array.from({ length: POOL }, (_, i) => new Client({ endpoints: cluster.clientUrls(), secret: cluster.secret, name: `bench-ref-${i}`, timeoutMs: 30_000 }));
    return {
      name: `flotilla@${ref}`,
      put: (i, key, v) => pool[i % POOL]!.put(key, v),
      get: (i, key, serializable) => pool[i % POOL]!.get(key, { serializable }),
      close: async () => {
        for (const c of pool) c.close();
        await cluster.stop();
        remove();
      },
    };
  } catch (err) {
    remove();
    throw err;
  }
}

async function etcd(): Promise<System | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-etcd-'));
  const members = [];
  for (let i = 1; i <= 3; i++) members.push({ name: `e${i}`, peer: await freePort('127.0.0.1'), client: await freePort('127.0.0.1') });
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const procs: ChildProcess[] = [];
  for (const m of members) {
    const p = spawn(
      'etcd',
      [
        '--name', m.name, '--data-dir', join(dir, m.name),
        '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'flotilla-bench',
        '--logger', 'zap', '--log-level', 'error',
      ],
      { stdio: 'ignore' },
    );
    procs.push(p);
    const failed = await new Promise<boolean>((resolve) => {
      p.once('error', () => resolve(true));
      setTimeout(() => resolve(false), 100);
    });
    if (failed) {
      for (const q of procs) if (q.pid !== undefined) q.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
  }
  const hosts = members.map((m) => `http://127.0.0.1:${m.client}`);
  const pool = Array.from({ length: POOL }, () => new Etcd3({ hosts }));
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await pool[0]!.put('bench/ready').value('1');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`etcd did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    name: 'etcd',
    put: (i, key, v) => pool[i % POOL]!.put(key).value(Buffer.from(v)).exec(),
    get: (i, key, serializable) => pool[i % POOL]!.get(key).serializable(serializable).exec(),
    close: async () => {
      for (const c of pool) c.close();
      for (const p of procs) if (p.pid !== undefined) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Bench = 'kv-put' | 'kv-get-linearizable' | 'kv-get-serializable';

async function measure(system: System, bench: Bench, clients: number): Promise<{ ops_per_s: number; p50_ms: number; p99_ms: number }> {
  const op = (i: number, n: number): Promise<unknown> => {
    const key = `bench/${i}/${n % 512}`;
    if (bench === 'kv-put') return system.put(i, key, value);
    return system.get(i, key, bench === 'kv-get-serializable');
  };
  let recording = false;
  let stop = false;
  const latencies: number[] = [];
  const loops = Array.from({ length: clients }, async (_, i) => {
    for (let n = 0; !stop; n++) {
      const t = performance.now();
      await op(i, n);
      if (recording) latencies.push(performance.now() - t);
    }
  });
  await new Promise((r) => setTimeout(r, 1000)); // warm up
  recording = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  recording = false;
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => +latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
  return { ops_per_s: Math.round(latencies.length / elapsed), p50_ms: pct(0.5), p99_ms: pct(0.99) };
}

function line(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const systems: System[] = [await flotilla()];
if (values.ref !== undefined) systems.push(await flotillaAt(values.ref));
const other = await etcd();
if (other === undefined) line({ note: 'etcd is not on the PATH; measuring Flotilla alone (apt-get install etcd-server for the comparison)' });
else systems.push(other);
try {
  // Seed the keys the reads will ask for.
  for (const s of systems) await Promise.all(Array.from({ length: 256 }, (_, i) => Promise.all(Array.from({ length: 8 }, (_, n) => s.put(i, `bench/${i}/${n}`, value)))));
  for (const bench of ['kv-put', 'kv-get-linearizable', 'kv-get-serializable'] as const) {
    for (const clients of clientCounts) {
      const results = new Map<string, { ops_per_s: number; p50_ms: number; p99_ms: number }[]>();
      for (let run = 1; run <= runs; run++) {
        for (const s of systems) {
          const r = await measure(s, bench, clients);
          results.set(s.name, [...(results.get(s.name) ?? []), r]);
          line({ bench, system: s.name, clients, run, ...r });
        }
      }
      const medians = new Map<string, number>();
      for (const [system, rs] of results) {
        const sorted = [...rs].sort((a, b) => a.ops_per_s - b.ops_per_s);
        const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
        medians.set(system, median.ops_per_s);
        line({ bench, system, clients, summary: 'median', runs, ...median });
      }
      if (medians.has('etcd')) line({ bench, clients, ratio_vs_etcd: +(medians.get('flotilla')! / medians.get('etcd')!).toFixed(2) });
      if (values.ref !== undefined) line({ bench, clients, ref: values.ref, ratio_vs_ref: +(medians.get('flotilla')! / medians.get(`flotilla@${values.ref}`)!).toFixed(2) });
    }
  }
} finally {
  for (const s of systems) await s.close();
}

// The fuzz campaign (issue 12: no request, frame or file can take a master down). Three real
// masters with the API and the control plane; fast-check generates HTTP requests, agent-socket
// frames, peer and KV frames (against the running processes, with every role's credentials)
// and cluster files (in a worker thread), while the campaign watches for what must not happen:
//
//   master_exits          a master process ended
//   max_stall_ms          the longest event-loop stall a master logged, as busy (CPU) time
//   unhandled_rejections  a master logged "unhandled rejection (a bug)"
//   unanswered            a request got no answer within its timeout
//   server_errors         a 5xx other than 503
//   canary_errors         a client writing and reading through the run saw an error (not 429) or a stale read
//   ssrf_hits             a loopback listener no master should ever dial was dialed
//   store_mismatches      the store does not hold exactly what the accepted requests made
//   clusterfile_failures  a cluster file parse that threw something else than one sentence
//
// Findings are JSON lines ({"fuzz":"finding",…}) naming the request (and its seed and index),
// the answer or the log line; the last line is the summary ({"fuzz":"done",…}).
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ADMIN_TOKEN, JOIN_TOKEN, ProcessCluster, VIEWER_TOKEN } from '../support/masters.ts';
import { httpRequest, FAMILY_WEIGHTS, type HttpFamily, type HttpReq } from './gen-http.ts';
import { agentAction, peerAction, AGENT_WEIGHTS, type AgentAction, type PeerAction } from './gen-frames.ts';
import { clusterFileCase, type ClusterFileCase } from './gen-clusterfile.ts';
import { closeAgents, describeMaterialized, materialize, rawOf, send, type Materialized, type Outcome, type SendContext, type Target } from './http-send.ts';
import { Ledger, danger, exitHint, payloadHint, type Flight } from './ledger.ts';
import { StoreModel } from './model.ts';
import { AgentDriver, normalize } from './agent-driver.ts';
import { PeerDriver } from './peer-driver.ts';
import { str, short } from './spec.ts';
import { AGENT_POD, BIG_NS, CANARY_NS, CANARY_TOKEN, GARBAGE_TOKEN, GHOST_NODE, GHOST_POD, KEEP, LOG_NS, MODEL_KINDS, MODEL_NS, NODE_NAME, SCRATCH_NS, pathOf, template } from './world.ts';

export interface CampaignOptions {
  /** Seconds of fuzzing in all (split evenly over the seeds). */
  readonly seconds: number;
  /** One phase per seed, on the same cluster. */
  readonly seeds: readonly number[];
  /** The masters' --max-old-space-size (MiB); 0: Node's default. */
  readonly oldSpaceMb?: number;
  /** HTTP requests in flight at once. */
  readonly concurrency?: number;
  /** Stop generating a family once it crashed a master (so the others get their turn). */
  readonly mute?: boolean;
  /** Start a master again after it exited. */
  readonly restart?: boolean;
  /** Fail the run when /livez takes longer than this (0: report only). For code without the stall log. */
  readonly livezFailMs?: number;
  /** Report a finding when /livez takes longer than this. */
  readonly livezFindingMs?: number;
  /** Per-request client timeout. */
  readonly timeoutMs?: number;
  /** Only these families (HTTP family names, or agent, peer, clusterfile). */
  readonly only?: readonly string[];
  /** Where finding lines and progress go (default: stdout). */
  readonly out?: (line: string) => void;
  /** Where the bytes of findings' requests are written. */
  readonly outDir?: string;
  readonly progressSeconds?: number;
}

export interface Summary {
  readonly fuzz: 'done';
  readonly seed: number | readonly number[];
  readonly seconds: number;
  readonly requests: number;
  readonly master_exits: number;
  readonly max_stall_ms: number;
  readonly max_wall_stall_ms: number;
  readonly max_livez_ms: number;
  readonly unhandled_rejections: number;
  readonly unanswered: number;
  readonly server_errors: number;
  readonly canary_errors: number;
  readonly ssrf_hits: number;
  readonly store_mismatches: number;
  readonly clusterfile_failures: number;
  readonly findings: number;
  readonly pass: boolean;
  readonly failed: readonly string[];
  readonly [k: string]: unknown;
}

const STALL_LIMIT_MS = 100;
/** The API's body limit (3 MiB, as Kubernetes). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Node's limit on a request's line and headers (--max-http-header-size), answered with 431. */
const MAX_HEADER_BYTES = 16 * 1024;

function headBytes(m: Materialized): number {
  return m.target.length + m.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
}

/**
 * Kubernetes answers a watch or list from a resourceVersion the server has not reached with
 * 504 "Too large resource version" (reason Timeout, cause ResourceVersionTooLarge): the
 * client's value, not a server fault. Counted apart.
 */
export function isTooLargeRv(message: unknown): boolean {
  return /^Too large resource version/.test(String(message ?? ''));
}
/** Stalls a master logs this soon after it (re)started are its start-up, not a request's doing. */
const START_GRACE_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function mix(seed: number, salt: number, batch: number): number {
  let h = (seed ^ Math.imul(salt, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = (h + Math.imul(batch, 0xc2b2ae35)) >>> 0;
  return (h ^ (h >>> 13)) | 0;
}

/** An endless, seeded sequence of generated values: batch b of the stream is fc.sample(arb, {seed: mix(seed, salt, b)}). */
function* stream<T>(arb: fc.Arbitrary<T>, seed: number, salt: number, name: string): Generator<{ value: T; origin: string }> {
  const per = 32;
  for (let b = 0; ; b++) {
    let values: T[];
    try {
      values = fc.sample(arb, { seed: mix(seed, salt, b), numRuns: per });
    } catch (err) {
      // A generator bug must not end the campaign: say so and go on with the next batch.
      process.stderr.write(`${JSON.stringify({ fuzz: 'harness-error', stream: name, seed, batch: b, err: String((err as Error)?.stack ?? err).slice(0, 500) })}\n`);
      continue;
    }
    for (let i = 0; i < values.length; i++) yield { value: values[i]!, origin: `seed ${seed} ${name} #${b * per + i}` };
  }
}

/** Kills the masters (pids in a file, each checked to be this cluster's) once the campaign's process is gone. */
const REAPER = `
const fs = require('node:fs');
const [parent, pidFile, dir] = process.argv.slice(1);
setInterval(() => {
  try { process.kill(Number(parent), 0); return; } catch {}
  let pids = [];
  try { pids = fs.readFileSync(pidFile, 'utf8').split('\\n').filter(Boolean).map(Number); } catch {}
  for (const pid of pids) {
    try { if (fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes(dir)) process.kill(pid, 'SIGKILL'); } catch {}
  }
  try { fs.rmSync(dir, { recursive: true, force: true }); } catch {}
  process.exit(0);
}, 1000);
`;

/** The livez pinger: a thread of its own, so the campaign's own work does not count as a master's latency. */
const LIVEZ_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const https = require('node:https');
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: workerData.ca });
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') { stopped = true; agent.destroy(); process.exit(0); } });
for (const t of workerData.targets) {
  const once = () => {
    if (stopped) return;
    const start = performance.now();
    let fin = false;
    const done = (ok) => {
      if (fin) return;
      fin = true;
      const ms = performance.now() - start;
      if (ok) parentPort.postMessage({ name: t.name, ms, at: Date.now() });
      setTimeout(once, ok ? Math.max(0, 20 - ms) : 100);
    };
    const req = https.get({ host: t.host, port: t.port, path: '/livez', agent, timeout: 15000 }, (res) => { res.resume(); res.on('end', () => done(true)); res.on('error', () => done(false)); });
    req.on('error', () => done(false));
    req.on('timeout', () => { parentPort.postMessage({ name: t.name, ms: 15000, at: Date.now(), timeout: true }); req.destroy(); });
  };
  once();
}
`;

export async function runCampaign(options: CampaignOptions): Promise<Summary> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const timeoutMs = options.timeoutMs ?? 15_000;
  const concurrency = options.concurrency ?? 8;
  const mute = options.mute ?? true;
  const restart = options.restart ?? true;
  const livezFindingMs = options.livezFindingMs ?? 1000;
  const oldSpaceMb = options.oldSpaceMb ?? 512;
  const only = options.only === undefined || options.only.length === 0 ? undefined : new Set(options.only);
  const outDir = options.outDir ?? mkdtempSync(join(tmpdir(), 'flotilla-fuzz-'));
  const cfDir = mkdtempSync(join(tmpdir(), 'flotilla-fuzz-cf-'));
  const ledger = new Ledger(Date.now(), out, outDir);
  const L = ledger;
  const model = new StoreModel();
  const muted = new Set<string>();
  const down = new Set<string>();
  const startedAt = new Map<string, number>();
  const recentLog = new Map<string, { at: number; level: number; msg: string; line: Record<string, unknown> }[]>();
  let stopping = false;
  let fuzzing = false;
  let maxRv = 1;
  const cleanups: (() => void | Promise<void>)[] = [];

  out(JSON.stringify({ fuzz: 'start', seeds: options.seeds, seconds: options.seconds, out_dir: outDir, old_space_mb: oldSpaceMb }));
  const t0 = Date.now();
  const timing: Record<string, number> = {};
  const mark = (what: string, since: number): number => {
    timing[what] = Math.round((Date.now() - since) / 100) / 10;
    return Date.now();
  };
  const cluster = await ProcessCluster.create({
    masters: 3,
    api: true,
    proxied: false,
    historyRevisions: 1000,
    nodeArgs: [...(oldSpaceMb > 0 ? [`--max-old-space-size=${oldSpaceMb}`] : []), ...(PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`])],
    extraTokens: [{ name: 'canary', token: CANARY_TOKEN, role: 'admin' }],
  });
  // If this process dies without running its exit handlers (a fatal V8 error), a reaper of
  // its own kills the masters it started, by pid (checked against the cluster's directory).
  const pidFile = join(cluster.dir, 'fuzz-pids');
  const reaper = spawn(process.execPath, ['-e', REAPER, String(process.pid), pidFile, cluster.dir], { detached: true, stdio: 'ignore' });
  reaper.unref();
  const writePids = (): void => {
    try {
      writeFileSync(pidFile, cluster.names.map((n) => cluster.masterPid(n)).filter((p) => p !== undefined).join('\n'));
    } catch {
      // the directory is gone: stopping
    }
  };
  cleanups.push(() => {
    if (reaper.pid !== undefined) {
      try {
        process.kill(reaper.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  try {
    await Promise.all(
      cluster.names.map(async (n) => {
        startedAt.set(n, Date.now());
        await cluster.start(n);
      }),
    );
    writePids();
    await cluster.leader(30_000);
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n, 30_000)));
    const ca = cluster.caCert();
    const targets: Target[] = cluster.names.map((name) => {
      const u = new URL(cluster.apiUrl(name));
      return { name, host: u.hostname, port: Number(u.port), ca };
    });
    const alive = (name: string): boolean => cluster.running(name) && !down.has(name);
    const liveTargets = (): Target[] => targets.filter((t) => alive(t.name));
    const pick = (i: number): Target | undefined => {
      const live = liveTargets();
      return live.length === 0 ? undefined : live[i % live.length];
    };
    let exitCursor = 0;
    const exitedDuring = (master: string, from: number, to: number): boolean => cluster.exits.some((e) => e.name === master && e.at >= from - 500 && e.at <= to);

    // ---- the loopback listener no master may ever dial (SSRF) ----
    const ssrfSeen: string[] = [];
    const ssrf: Server = createServer((sock: Socket) => {
      L.counters.ssrf_hits++;
      let first = '';
      sock.on('data', (d: Buffer) => {
        if (first === '') {
          first = d.toString('latin1').split('\r\n').slice(0, 4).join(' | ');
          if (ssrfSeen.length < 5) ssrfSeen.push(first);
          const suspects = L.describeSuspects([...L.inFlight.values()].filter((f) => f.family === 'log-absolute' || f.desc.includes(String(ssrfPort))).slice(0, 3));
          L.finding('ssrf', suspects[0]?.family ?? 'unknown', 'dialed', { detail: `a master connected to the loopback listener at ${ssrfAddr} and sent: ${short(first, 300)}`, suspects });
        }
        sock.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nssrf!');
      });
      sock.on('error', () => undefined);
      setTimeout(() => sock.destroy(), 2000).unref();
    });
    await new Promise<void>((resolve) => ssrf.listen(0, '127.0.0.1', resolve));
    const ssrfPort = (ssrf.address() as { port: number }).port;
    const ssrfAddr = `127.0.0.1:${ssrfPort}`;
    cleanups.push(() => new Promise<void>((r) => ssrf.close(() => r())));

    // ---- credentials ----
    const adminCtx = (token: string): SendContext => ({ ssrf: ssrfAddr, ssrfPort, rv: () => String(maxRv), node: NODE_NAME, tokens: { admin: token, viewer: VIEWER_TOKEN, node: '', join: JOIN_TOKEN, garbage: GARBAGE_TOKEN } });
    const harness = async (method: string, path: string, body: unknown, token = ADMIN_TOKEN, pool = 'harness', t = pick(0)): Promise<Outcome & { json?: any }> => {
      if (t === undefined) return { bodyComplete: false, error: 'no master is up', viaRaw: false, ms: 0 };
      const m = materialize({ family: 'misc', cred: 'admin', master: 0, method, path, query: [], headers: body === undefined ? [] : [['content-type', 'application/json']], ...(body === undefined ? {} : { body: { json: body } }) }, adminCtx(token));
      const sentAt = Date.now();
      const o = await send(t, m, timeoutMs, undefined, pool);
      if (pool === 'harness') model.observe(method, path, m.body, o.status, o.body, sentAt, Date.now(), `harness ${method} ${path}`);
      let json: unknown;
      try {
        json = o.body === undefined ? undefined : JSON.parse(o.body.toString('utf8'));
      } catch {
        json = undefined;
      }
      return { ...o, json };
    };
    const joined = await (async () => {
      for (let i = 0; i < 10; i++) {
        const r = await harness('POST', '/flotilla/v1/join', { nodeName: NODE_NAME }, JOIN_TOKEN, 'join');
        if (r.status === 200 && typeof r.json?.token === 'string') return r.json.token as string;
        await sleep(500);
      }
      throw new Error('could not join the fuzzer as a node');
    })();
    const ctx: SendContext = { ssrf: ssrfAddr, ssrfPort, rv: () => String(maxRv), node: NODE_NAME, tokens: { admin: ADMIN_TOKEN, viewer: VIEWER_TOKEN, node: joined, join: JOIN_TOKEN, garbage: GARBAGE_TOKEN } };

    // ---- fixtures: namespaces, pods whose logs are forwarded, objects the bombs aim at ----
    const fixtures = async (): Promise<void> => {
      for (const ns of [...MODEL_NS, ...SCRATCH_NS, LOG_NS, BIG_NS, CANARY_NS]) await harness('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      const pod = (name: string, node: string): unknown => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: LOG_NS }, spec: { nodeName: node, containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'] }] } });
      await harness('POST', `/api/v1/namespaces/${LOG_NS}/pods`, pod(GHOST_POD, GHOST_NODE));
      await harness('POST', `/api/v1/namespaces/${LOG_NS}/pods`, pod(AGENT_POD, NODE_NAME));
      for (const ns of MODEL_NS) for (const k of MODEL_KINDS) await harness('POST', pathOf(k, ns), template(k, KEEP, ns));
    };
    await fixtures();

    // ---- watching the masters: exits, their logs, /livez ----
    const restartMaster = async (name: string): Promise<void> => {
      down.add(name);
      for (let attempt = 0; attempt < 4 && !stopping; attempt++) {
        await sleep(300 + attempt * 2000);
        if (stopping) return;
        try {
          startedAt.set(name, Date.now());
          await cluster.start(name);
          writePids();
          await cluster.apiReady(name, 30_000);
          down.delete(name);
          out(JSON.stringify({ fuzz: 'restarted', master: name, at_s: L.at() }));
          return;
        } catch (err) {
          out(JSON.stringify({ fuzz: 'restart-failed', master: name, attempt, err: (err as Error).message.slice(0, 300) }));
        }
      }
    };
    const complaintCursor = new Map<string, number>();
    const checkExits = (): void => {
      while (exitCursor < cluster.exits.length) {
        const e = cluster.exits[exitCursor++]!;
        if (stopping) continue;
        L.counters.master_exits++;
        const since = complaintCursor.get(e.name) ?? 0;
        const stderr = cluster.complaints.slice(since).filter((c) => c.startsWith(`${e.name}: `)).map((c) => c.slice(e.name.length + 2));
        complaintCursor.set(e.name, cluster.complaints.length);
        const log = (recentLog.get(e.name) ?? []).filter((x) => x.level >= 50 && x.at > e.at - 10_000).slice(-5).map((x) => `${x.msg}: ${short(JSON.stringify(x.line['err'] ?? x.line), 600)}`);
        const suspects = L.suspects(e.name, e.at - 3000, e.at, 5, exitHint(stderr));
        const culprit = suspects[0];
        const oom = stderr.some((l) => /heap out of memory|Reached heap limit|Allocation failed/.test(l));
        L.finding(
          'master-exit',
          culprit?.family ?? 'unknown',
          oom ? 'oom' : `${e.signal ?? e.code}`,
          {
            master: e.name,
            code: e.code,
            signal: e.signal,
            ...(oom ? { oom: true } : {}),
            stderr: (() => {
              const lines = stderr.filter((l) => l.trim() !== '');
              return (lines.length <= 12 ? lines : [...lines.slice(0, 6), '…', ...lines.slice(-5)]).map((l) => short(l, 300));
            })(),
            log,
            ...(culprit === undefined ? {} : { origin: culprit.origin, request: culprit.desc }),
            suspects: L.describeSuspects(suspects.slice(1)),
          },
        );
        if (mute && culprit !== undefined && danger(culprit.family) >= 5 && !muted.has(culprit.family)) {
          muted.add(culprit.family);
          out(JSON.stringify({ fuzz: 'muted', family: culprit.family, why: `${e.name} exited while it was in flight` }));
        }
        if (restart) void restartMaster(e.name);
      }
    };
    let logCursor = 0;
    const checkLogs = (): void => {
      const msgs = cluster.messages;
      for (; logCursor < msgs.length; logCursor++) {
        const m = msgs[logCursor]!;
        const level = Number(m.line['level'] ?? 0);
        const ring = recentLog.get(m.name) ?? [];
        if (level >= 40) {
          ring.push({ at: m.at, level, msg: m.msg, line: m.line });
          if (ring.length > 40) ring.shift();
          recentLog.set(m.name, ring);
        }
        if (!fuzzing) continue;
        if (m.msg === 'event loop stalled') {
          const stallMs = Number(m.line['stallMs'] ?? 0);
          const busyMs = Number(m.line['busyMs'] ?? 0);
          const gcMs = Number(m.line['gcMs'] ?? 0);
          if (m.at - (startedAt.get(m.name) ?? 0) < START_GRACE_MS) continue;
          L.counters.stall_reports++;
          L.counters.max_wall_stall_ms = Math.max(L.counters.max_wall_stall_ms, stallMs);
          L.counters.max_stall_ms = Math.max(L.counters.max_stall_ms, busyMs);
          if (busyMs > STALL_LIMIT_MS) {
            const end = typeof m.line['time'] === 'number' ? (m.line['time'] as number) : m.at;
            const suspects = L.suspects(m.name, end - stallMs - 300, end, 4, payloadHint, end - stallMs);
            const culprit = suspects[0];
            L.finding('stall', culprit?.family ?? 'unknown', culprit?.family ?? '', { master: m.name, pid: m.line['pid'], hrFromUs: m.line['hrFromUs'], hrToUs: m.line['hrToUs'], stallMs, busyMs, gcMs, log: `{"msg":"event loop stalled","stallMs":${stallMs},"busyMs":${busyMs},"gcMs":${gcMs}}`, ...(culprit === undefined ? {} : { origin: culprit.origin, request: culprit.desc }), suspects: L.describeSuspects(suspects.slice(1)) });
          }
        } else if (m.msg === 'unhandled rejection (a bug)') {
          L.counters.unhandled_rejections++;
          const suspects = L.suspects(m.name, m.at - 2000, m.at, 4);
          const err = String(m.line['err'] ?? '');
          L.finding('unhandled-rejection', suspects[0]?.family ?? 'unknown', normalize(err.split('\n')[0]), { master: m.name, err: err.split('\n').slice(0, 8).join('\n'), ...(suspects[0] === undefined ? {} : { origin: suspects[0].origin, request: suspects[0].desc }), suspects: L.describeSuspects(suspects.slice(1)) });
        } else if (/failed unexpectedly|frame handler failed/.test(m.msg)) {
          // A request that met an error nobody expected: answered 500 (or its watch ended with
          // one), and a bug all the same.
          L.counters.internal_errors_logged++;
          const suspects = L.suspects(m.name, m.at - 2000, m.at, 4);
          const err = String(m.line['err'] ?? '');
          L.finding('internal-error', suspects[0]?.family ?? 'unknown', normalize(err.split('\n')[0]), { master: m.name, msg: m.msg, err: err.split('\n').slice(0, 8).join('\n'), ...(suspects[0] === undefined ? {} : { origin: suspects[0].origin, request: suspects[0].desc }), suspects: L.describeSuspects(suspects.slice(1)) });
        }
      }
      if (logCursor > 20_000) {
        msgs.splice(0, logCursor);
        logCursor = 0;
      }
    };
    const monitor = setInterval(() => {
      checkExits();
      checkLogs();
    }, 100);
    cleanups.push(() => clearInterval(monitor));

    const livez = new Worker(LIVEZ_WORKER, { eval: true, workerData: { ca, targets: targets.map((t) => ({ name: t.name, host: t.host, port: t.port })) } });
    livez.on('message', (s: { name: string; ms: number; at: number; timeout?: boolean }) => {
      if (!fuzzing || !alive(s.name) || s.at - (startedAt.get(s.name) ?? 0) < START_GRACE_MS) return;
      L.counters.max_livez_ms = Math.max(L.counters.max_livez_ms, Math.round(s.ms));
      if (s.ms > livezFindingMs) {
        const suspects = L.suspects(s.name, s.at - s.ms - 300, s.at, 4, payloadHint, s.at - s.ms);
        const culprit = suspects[0];
        L.finding('livez-stall', culprit?.family ?? 'unknown', culprit?.family ?? '', { master: s.name, livezMs: Math.round(s.ms), detail: `GET /livez on ${s.name} took ${Math.round(s.ms)} ms`, ...(culprit === undefined ? {} : { origin: culprit.origin, request: culprit.desc }), suspects: L.describeSuspects(suspects.slice(1)) });
      }
    });
    livez.on('error', () => undefined);
    cleanups.push(async () => {
      livez.postMessage('stop');
      await Promise.race([new Promise((r) => livez.once('exit', r)), sleep(1000)]);
      await livez.terminate();
    });

    // The generator's own work yields to the masters (threads started from here on inherit it).
    try {
      setPriority(0, 10);
    } catch {
      // not allowed: fine
    }

    // ---- the canary: writes and reads back through the whole run ----
    let canaryStop = false;
    let canaryErrorsShown = 0;
    const canaryLoop = (async () => {
      let seq = 0;
      let acked: string | undefined;
      const lease = (v: string): unknown => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'canary', namespace: CANARY_NS }, spec: { holderIdentity: v } });
      const path = `/apis/coordination.k8s.io/v1/namespaces/${CANARY_NS}/leases/canary`;
      const problem = (what: string, o: Outcome & { json?: any }, master: string): void => {
        L.counters.canary_errors++;
        if (canaryErrorsShown++ < 5) out(JSON.stringify({ fuzz: 'finding', kind: 'canary', family: 'canary', seed: L.seed, at_s: L.at(), master, detail: what, status: o.status ?? null, error: o.error ?? null, response: o.body === undefined ? null : short(o.body.toString('utf8'), 300), exited_meanwhile: cluster.exits.some((e) => e.at > Date.now() - 20_000) }));
      };
      const created = await harness('POST', `/apis/coordination.k8s.io/v1/namespaces/${CANARY_NS}/leases`, lease('c-0'), CANARY_TOKEN, 'canary');
      if (created.status === 201 || created.status === 409) acked = created.status === 201 ? 'c-0' : undefined;
      while (!canaryStop) {
        const t0 = Date.now();
        seq++;
        const live = liveTargets();
        if (live.length >= 1) {
          const writer = live[seq % live.length]!;
          const reader = live[(seq + 1) % live.length]!;
          const value = `c-${seq}`;
          const w = await harness('PUT', path, lease(value), CANARY_TOKEN, 'canary', writer);
          if (w.status !== undefined && w.status >= 200 && w.status < 300) {
            acked = value;
            L.counters.canary_writes++;
          } else if (w.status !== 429) problem(`PUT of ${value} through ${writer.name} failed`, w, writer.name);
          const r = await harness('GET', path, undefined, CANARY_TOKEN, 'canary', reader);
          if (r.status === 200) {
            L.counters.canary_reads++;
            const seen = r.json?.spec?.holderIdentity as string | undefined;
            if (acked !== undefined && seen !== acked) problem(`read ${String(seen)} through ${reader.name} after ${acked} was acknowledged (a stale read, or a lost write)`, r, reader.name);
          } else if (r.status !== 429) problem(`GET through ${reader.name} failed`, r, reader.name);
        }
        await sleep(Math.max(0, 100 - (Date.now() - t0)));
      }
    })();

    // ---- fixtures kept in place (the fuzzer deletes namespaces and objects) ----
    const refresher = setInterval(() => {
      if (!stopping) void fixtures().catch(() => undefined);
    }, 5000);
    cleanups.push(() => clearInterval(refresher));

    // ---- the fuzzers ----
    let phaseUntil = 0;
    const agents = new AgentDriver({ running: () => Date.now() < phaseUntil && !stopping, ledger: L, targets: () => targets, alive, tokens: { node: joined, admin: ADMIN_TOKEN, viewer: VIEWER_TOKEN, join: JOIN_TOKEN, garbage: GARBAGE_TOKEN }, rv: () => String(maxRv), onRv: (rv) => (maxRv = Math.max(maxRv, rv)), exitedDuring });
    cleanups.push(() => agents.stop());
    const clientPorts = cluster.clientUrls().map((u) => Number(new URL(u).port));
    const peers = new PeerDriver({ ledger: L, targets: () => cluster.names.map((name, i) => ({ name, host: cluster.peerListen(name).ip, peerPort: cluster.peerListen(name).peerPort, clientPort: clientPorts[i]! })), alive, secret: cluster.secret, exitedDuring });

    const weights: Partial<Record<HttpFamily, number>> = {};
    for (const [f, w] of Object.entries(FAMILY_WEIGHTS) as [HttpFamily, number][]) if (only === undefined || only.has(f)) weights[f] = w;
    const agentWeights: Record<string, number> = {};
    for (const [f, w] of Object.entries(AGENT_WEIGHTS)) if (only === undefined || only.has('agent') || only.has(`agent:${f}`)) agentWeights[f] = w;
    const httpOn = Object.keys(weights).length > 0;
    const agentOn = Object.keys(agentWeights).length > 0;
    const peerOn = only === undefined || only.has('peer');
    const cfOn = only === undefined || only.has('clusterfile');

    const httpOne = async (req: HttpReq, origin: string): Promise<void> => {
      const t = pick(req.master);
      if (t === undefined) return sleep(200);
      let m: Materialized;
      try {
        m = materialize(req, ctx);
      } catch (err) {
        out(JSON.stringify({ fuzz: 'harness-error', origin, err: (err as Error).message }));
        return;
      }
      const flight = L.begin({ channel: 'http', master: t.name, family: req.family, desc: describeMaterialized(m), origin, payload: () => m.raw ?? rawOf(m) });
      L.counters.requests++;
      L.counters.http_requests++;
      // A watch or a followed log however it was asked for (the crud family's queries may say watch=true): held, then closed.
      const streaming = req.holdMs ?? (/[?&](watch|follow)=(true|1|t|T|True|TRUE)(&|$)/.test(m.target) || /\/watch\//.test(m.target) ? 300 : undefined);
      const o = await send(t, m, timeoutMs, streaming);
      await classifyHttp(flight, t, m, o);
    };

    const classifyHttp = async (flight: Flight, t: Target, m: Materialized, o: Outcome): Promise<void> => {
      const [method, target] = m.raw === undefined ? [m.method, m.target] : (m.target.split(' ') as [string, string]);
      if (o.status !== undefined) {
        L.counters.answered++;
        L.end(flight, o.status);
        if (o.status === 503) L.counters.status_503++;
        if (o.status === 429) L.counters.status_429++;
        const text = o.status >= 500 ? (o.body?.toString('utf8') ?? '') : '';
        let message = text;
        try {
          message = String((JSON.parse(text) as { message?: unknown }).message ?? text);
        } catch {
          // not JSON
        }
        if (o.status === 504 && isTooLargeRv(message)) L.counters.too_large_rv_504++;
        else if (o.status >= 500 && o.status !== 503) {
          L.counters.server_errors++;
          await sleep(300); // the master's log line may still be on its way
          const log = (recentLog.get(t.name) ?? []).filter((x) => x.at >= flight.started - 200 && /failed unexpectedly/.test(x.msg)).slice(-1).map((x) => short(String(x.line['err'] ?? ''), 500));
          L.finding('server-error', flight.family, `${o.status} ${normalize(message)}`, { response: `${o.status} ${short(text, 400)}`, ...(log.length > 0 ? { log: log[0] } : {}) }, flight);
        }
        if (o.body !== undefined && o.body.byteLength < 2_000_000 && (o.headers?.['content-type'] ?? '').includes('json')) {
          const rv = /"resourceVersion":"(\d+)"/.exec(o.body.subarray(0, 4096).toString('utf8'))?.[1];
          if (rv !== undefined) maxRv = Math.max(maxRv, Number(rv));
        }
      } else if (o.timedOut === true) {
        L.end(flight, 'timeout');
        if (exitedDuring(t.name, flight.started, Date.now())) L.counters.cut_by_exit++;
        else {
          L.counters.unanswered++;
          L.finding('unanswered', flight.family, 'timeout', { detail: `no answer within ${timeoutMs / 1000} s` }, flight);
        }
      } else if (/ECONNREFUSED/.test(o.error ?? '') || !alive(t.name)) {
        L.end(flight, 'refused');
        L.counters.refused_while_down++;
      } else {
        // Closed without an answer: was the master going away?
        await sleep(1500);
        if (exitedDuring(t.name, flight.started, Date.now()) || !alive(t.name)) {
          L.end(flight, 'cut by exit');
          L.counters.cut_by_exit++;
        } else if (m.raw !== undefined) {
          L.end(flight, 'closed');
          L.counters.raw_closed++;
          L.counters.answered++;
        } else if (((!m.chunked && (m.lieLength ?? m.body?.byteLength ?? 0) > MAX_BODY_BYTES) || headBytes(m) > MAX_HEADER_BYTES) && /EPIPE|ECONNRESET|hang up/.test(o.error ?? '')) {
          // It declared a body over the limit (or sent headers over Node's 16 KiB): the master
          // answers 413 (431) at once and hangs up while the rest is still being written, so
          // the client may lose the answer. Not a fault.
          L.end(flight, 'closed (oversize)');
          L.counters.oversize_closed++;
          L.counters.answered++;
        } else {
          L.end(flight, 'closed');
          L.counters.unanswered++;
          L.finding('unanswered', flight.family, normalize(o.error), { detail: `the connection ended without an answer: ${o.error ?? 'closed'}` }, flight);
        }
      }
      model.observe(method ?? 'GET', target ?? '/', m.body, o.status, o.body, flight.started, Date.now(), flight.origin);
    };

    let tPhase = mark('setup_s', t0);
    const phaseSeconds = options.seconds / Math.max(1, options.seeds.length);
    ledger.seed = options.seeds[0] ?? 0;
    ledger.startedAt = Date.now();
    fuzzing = true;
    let lastProgress = Date.now();
    const progress = setInterval(() => {
      if (Date.now() - lastProgress < (options.progressSeconds ?? 10) * 1000) return;
      lastProgress = Date.now();
      const c = L.counters;
      out(JSON.stringify({ fuzz: 'progress', seed: L.seed, at_s: L.at(), requests: c.requests, findings: L.findings, master_exits: c.master_exits, max_stall_ms: c.max_stall_ms, max_livez_ms: c.max_livez_ms, server_errors: c.server_errors, unanswered: c.unanswered, canary_writes: c.canary_writes, canary_errors: c.canary_errors, ssrf_hits: c.ssrf_hits, in_flight: L.inFlight.size, muted: [...muted] }));
    }, 1000);
    cleanups.push(() => clearInterval(progress));

    for (const seed of options.seeds) {
      ledger.seed = seed;
      const until = Date.now() + phaseSeconds * 1000;
      phaseUntil = until;
      const running = (): boolean => Date.now() < until && !stopping;
      const httpStream = httpOn ? stream(httpRequest(weights), seed, 1, 'http') : undefined;
      const nextHttp = (): { value: HttpReq; origin: string } | undefined => {
        for (let i = 0; i < 2000; i++) {
          const n = httpStream!.next().value!;
          if (!muted.has(n.value.family)) return n;
        }
        return undefined; // every family it generates is muted
      };
      const workers: Promise<void>[] = [];
      if (httpOn)
        for (let w = 0; w < concurrency; w++)
          workers.push(
            (async () => {
              while (running()) {
                const next = nextHttp();
                if (next === undefined) {
                  await sleep(100);
                  continue;
                }
                const { value, origin } = next;
                if (value.fanout !== undefined && value.fanout > 1) await Promise.all(Array.from({ length: value.fanout }, () => httpOne(value, origin)));
                else await httpOne(value, origin);
              }
            })(),
          );
      if (agentOn) {
        const agentStream = stream(agentAction(agentWeights as never), seed, 2, 'agent');
        for (let w = 0; w < 3; w++)
          workers.push(
            (async () => {
              while (running()) {
                const { value, origin } = agentStream.next().value! as { value: AgentAction; origin: string };
                if (muted.has(`agent:${value.type}`)) {
                  await sleep(5);
                  continue;
                }
                await agents.run(value, origin).catch((err: unknown) => out(JSON.stringify({ fuzz: 'harness-error', origin, err: String((err as Error)?.stack ?? err) })));
              }
            })(),
          );
      }
      if (peerOn) {
        const peerStream = stream(peerAction, seed, 3, 'peer');
        workers.push(
          (async () => {
            while (running()) {
              const { value, origin } = peerStream.next().value! as { value: PeerAction; origin: string };
              if (muted.has(value.port)) {
                await sleep(5);
                continue;
              }
              await peers.run(value, origin).catch((err: unknown) => out(JSON.stringify({ fuzz: 'harness-error', origin, err: String((err as Error)?.stack ?? err) })));
              await sleep(100);
            }
          })(),
        );
      }
      if (cfOn) workers.push(clusterFiles(stream(clusterFileCase, seed, 4, 'clusterfile'), running, L, cfDir));
      // After the phase's time: say what is still being waited for (each request has its own timeout).
      const draining = setInterval(() => {
        if (Date.now() < until + 3000) return;
        const old = [...L.inFlight.values()].filter((f) => Date.now() - f.started > 2000 && f.channel !== 'canary').map((f) => ({ age_s: Math.round((Date.now() - f.started) / 1000), master: f.master, family: f.family, request: short(f.desc, 160) }));
        out(JSON.stringify({ fuzz: 'draining', seed, in_flight: L.inFlight.size, oldest: old.slice(0, 5) }));
      }, 5000);
      await Promise.all(workers);
      clearInterval(draining);
    }
    fuzzing = false;
    canaryStop = true;
    await canaryLoop;
    tPhase = mark('fuzz_and_drain_s', tPhase);

    // ---- the store: exactly what the accepted requests made ----
    await sleep(500);
    checkExits();
    const listed = new Map<string, Record<string, unknown>[]>();
    for (const ns of MODEL_NS) {
      for (const k of MODEL_KINDS) {
        for (const t of liveTargets()) {
          const r = await harness('GET', pathOf(k, ns), undefined, ADMIN_TOKEN, 'verify', t);
          if (r.status === 200 && Array.isArray(r.json?.items)) {
            listed.set(`${k.resource}/${ns}`, r.json.items as Record<string, unknown>[]);
            break;
          }
        }
      }
    }
    const mismatches = model.compare(listed);
    L.counters.store_mismatches = mismatches.length;
    L.counters.store_objects = model.size;
    L.counters.store_unknown = model.unknown.size;
    L.counters.accepted_writes = model.accepted;
    if (listed.size < MODEL_NS.length * MODEL_KINDS.length) {
      L.counters.store_mismatches++;
      out(JSON.stringify({ fuzz: 'finding', kind: 'store', family: 'store', seed: L.seed, detail: `could list only ${listed.size} of ${MODEL_NS.length * MODEL_KINDS.length} model collections at the end` }));
    }
    for (const mm of mismatches.slice(0, 20)) out(JSON.stringify({ fuzz: 'finding', kind: 'store-mismatch', family: 'store', seed: L.seed, key: mm.key, problem: mm.problem, ...(mm.expected === undefined ? {} : { expected: mm.expected }), ...(mm.found === undefined ? {} : { found: mm.found }) }));
    L.findings += mismatches.length;

    stopping = true;
    checkLogs();
    mark('verify_s', tPhase);
    const c = L.counters;
    const failed: string[] = [];
    if (c.master_exits > 0) failed.push('master_exits');
    if (c.max_stall_ms > STALL_LIMIT_MS) failed.push('max_stall_ms');
    if (c.unhandled_rejections > 0) failed.push('unhandled_rejections');
    if (c.unanswered > 0) failed.push('unanswered');
    if (c.server_errors > 0) failed.push('server_errors');
    if (c.canary_errors > 0) failed.push('canary_errors');
    if (c.canary_writes === 0) failed.push('canary_writes');
    if (c.ssrf_hits > 0) failed.push('ssrf_hits');
    if (c.store_mismatches > 0) failed.push('store_mismatches');
    if (c.clusterfile_failures > 0) failed.push('clusterfile_failures');
    if (c.internal_errors_logged > 0) failed.push('internal_errors_logged');
    if ((options.livezFailMs ?? 0) > 0 && c.max_livez_ms > options.livezFailMs!) failed.push('max_livez_ms');
    const statuses: Record<string, number> = {};
    for (const [k, v] of [...L.statuses].sort((a, b) => b[1] - a[1]).slice(0, 40)) statuses[k] = v;
    const found: Record<string, { at_s: number; seed: number }> = {};
    for (const [k, v] of L.firstFound) found[k] = v;
    return {
      fuzz: 'done',
      seed: options.seeds.length === 1 ? options.seeds[0]! : options.seeds,
      seconds: options.seconds,
      ...c,
      findings: L.findings,
      pass: failed.length === 0,
      failed,
      first_found: found,
      muted: [...muted],
      ssrf_requests: ssrfSeen,
      statuses,
      out_dir: outDir,
      timing,
    } as Summary;
  } finally {
    stopping = true;
    for (const f of cleanups.reverse()) {
      try {
        await f();
      } catch {
        // best effort
      }
    }
    closeAgents();
    // A master writes its profile when it exits by itself (stop() kills with SIGKILL).
    if (PROFILE_DIR !== undefined) await Promise.all(cluster.names.map((n) => cluster.kill(n, 'SIGTERM')));
    await cluster.stop();
    rmSync(cfDir, { recursive: true, force: true });
  }
}

/** FUZZ_PROFILE_DIR=DIR: the masters write CPU profiles there (to find what a stall was). */
const PROFILE_DIR = process.env['FUZZ_PROFILE_DIR'];

/** A cluster file that takes this long to refuse is hung (the cases are at most ~100 KB of YAML but one). */
const CLUSTERFILE_HANG_MS = 15_000;

/** Cluster files through parseClusterFile / loadClusterFile in a process of its own (hangs, heap blow-ups and fatal errors are seen, not suffered). */
async function clusterFiles(cases: Generator<{ value: ClusterFileCase; origin: string }>, running: () => boolean, L: Ledger, dir: string): Promise<void> {
  const file = fileURLToPath(new URL('./clusterfile-child.ts', import.meta.url));
  const tsx = import.meta.resolve('tsx');
  let stderr: string[] = [];
  const spawnChild = async (): Promise<ChildProcess> => {
    stderr = [];
    const child = spawn(process.execPath, ['--no-warnings', '--max-old-space-size=256', '--import', tsx, file, dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 40) stderr.push(...d.toString('utf8').split('\n').filter((l) => l.trim() !== '').slice(0, 40 - stderr.length));
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the cluster-file process did not start within 30 s')), 30_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the cluster-file process exited at once (${signal ?? code}): ${stderr.join(' / ')}`));
      });
    });
    return child;
  };
  const stop = (c: ChildProcess): void => {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  let child = await spawnChild();
  let id = 0;
  try {
    while (running()) {
      const { value: c, origin } = cases.next().value as { value: ClusterFileCase; origin: string };
      const text = str(c.text);
      const job = { id: ++id, mode: c.mode, text, files: c.files };
      L.counters.requests++;
      L.counters.clusterfile_cases++;
      const flight = L.begin({ channel: 'clusterfile', master: '-', family: 'clusterfile', desc: `${c.mode}ClusterFile (${c.label}, ${text.length} chars): ${JSON.stringify(short(text, 300))}${c.files.length > 0 ? ` with files ${c.files.map((f) => f.name).join(', ')}` : ''}`, origin, payload: () => Buffer.from(text) });
      let crash = '';
      const answer = await new Promise<{ ok: boolean; name?: string; ctor?: string; message?: string; stack?: string } | 'hang' | 'crash'>((resolve) => {
        const timer = setTimeout(() => done('hang'), CLUSTERFILE_HANG_MS);
        const onMessage = (m: { id: number; ok: boolean }): void => {
          if (m.id === job.id) done(m);
        };
        const onExit = (code: number | null, signal: string | null): void => {
          // Give its last words a moment to arrive.
          setTimeout(() => {
            crash = `exited (${signal ?? code}): ${stderr.slice(0, 6).join(' / ')}`;
            done('crash');
          }, 200);
        };
        function done(v: { ok: boolean } | 'hang' | 'crash'): void {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve(v);
        }
        child.on('message', onMessage);
        child.once('exit', onExit);
        child.send(job);
      });
      if (answer === 'hang' || answer === 'crash') {
        L.end(flight, answer);
        L.counters.clusterfile_failures++;
        L.finding(`clusterfile-${answer}`, 'clusterfile', answer === 'crash' ? `${c.label} ${normalize(crash).slice(0, 60)}` : c.label, { detail: answer === 'hang' ? `parsing took more than ${CLUSTERFILE_HANG_MS / 1000} s` : `the parsing process died: ${short(crash, 600)}` }, flight);
        stop(child);
        child = await spawnChild();
        continue;
      }
      L.counters.answered++;
      if (answer.ok) {
        L.end(flight, 'accepted');
      } else if (answer.name !== 'ClusterFileError' && answer.name !== 'UsageError') {
        L.end(flight, answer.name ?? 'error');
        L.counters.clusterfile_failures++;
        L.finding('clusterfile-error', 'clusterfile', `${answer.name} ${normalize(answer.message)}`, { error: `${answer.name}: ${short(answer.message ?? '', 300)}`, stack: answer.stack }, flight);
      } else if ((answer.message ?? '').includes('\n') || (answer.message ?? '').length > 2000 || (answer.message ?? '') === '') {
        L.end(flight, 'long message');
        L.counters.clusterfile_failures++;
        L.finding('clusterfile-message', 'clusterfile', normalize(answer.message).slice(0, 40), { detail: `refused, but not in one sentence (${(answer.message ?? '').length} chars${(answer.message ?? '').includes('\n') ? ', several lines' : ''})`, error: short(answer.message ?? '', 300) }, flight);
      } else L.end(flight, 'refused');
      await sleep(15);
    }
  } finally {
    stop(child);
  }
}

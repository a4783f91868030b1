// Real master processes (the `flotilla master` command) on loopback, each on its own
// 127.0.0.x address, with a fault proxy in front of every peer port. Every process started is
// tracked by pid and killed by pid when the test ends, whatever happened.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { collectStatus, loadClusterFile, type MasterStatus } from '@flotilla/cli';
import { FaultProxy } from './proxy.ts';
import { freePort } from '@flotilla/wire';

export { freePort };

const BIN = fileURLToPath(new URL('../../packages/cli/bin/flotilla.mjs', import.meta.url));
const live = new Set<ChildProcess>();
/** FLOTILLA_TEST_TRACE=FILE appends every master's log lines to FILE (for chasing a failure). */
const TRACE = process.env['FLOTILLA_TEST_TRACE'];
// If the test process dies, its masters must not outlive it.
const clusters = new Set<ProcessCluster>();
process.on('exit', () => {
  for (const p of live) if (p.pid !== undefined) process.kill(p.pid, 'SIGKILL');
  // …nor the file systems mounted for them.
  for (const c of clusters) c.unmount();
  // …nor the pods their agents started.
  for (const c of clusters) for (const pid of c.podProcesses()) killTree(pid);
});

/** SIGKILL to a pod process's group (pods lead their own), or to the process alone. */
function killTree(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // not a group leader, or gone meanwhile
    }
  }
}


interface MasterInfo {
  readonly name: string;
  readonly ip: string;
  readonly peerPort: number;
  readonly clientPort: number;
  readonly apiPort: number;
  proc: ChildProcess | undefined;
  proxy: FaultProxy | undefined;
}

export interface ProcessClusterOptions {
  readonly masters: number;
  /** Put a fault proxy in front of each peer port (default true). */
  readonly proxied?: boolean;
  readonly timing?: { tickMs: number; electionTicks: number; heartbeatTicks: number };
  /** Extra masters listed with join: true (started empty, added with `flotilla member add`). */
  readonly joiners?: number;
  /** Give every master a Kubernetes API address (HTTPS), with admin and viewer tokens. */
  readonly api?: boolean;
  /** Revisions of history the store keeps (cluster file store.historyRevisions). */
  readonly historyRevisions?: number;
  /** false: the leader runs no scheduler or controllers (cluster file controlPlane: false). */
  readonly controlPlane?: boolean;
  /** Node lifecycle timings in seconds (cluster file nodeLifecycle). */
  readonly nodeLifecycle?: { gracePeriodSeconds?: number; evictionSeconds?: number };
  /** API in-flight limits (cluster file apiServer). */
  readonly apiServer?: { maxRequestsInFlight?: number; maxMutatingRequestsInFlight?: number };
  /** Serve the API over plain HTTP (cluster file insecureHttp: true). */
  readonly insecureHttp?: boolean;
  /** Extra node flags for the master processes (e.g. ['--cpu-prof'] when profiling). */
  readonly nodeArgs?: readonly string[];
  /** Worker agents listed in the cluster file (w1 … wN on 127.0.2.1 …); start them with startAgent. */
  readonly workers?: number;
  /** Give each master's data directory its own tmpfs of this many MiB (needs root), to fill its disk. */
  readonly tmpfsMb?: number;
  /** More API tokens besides admin and viewer (with api: true). */
  readonly extraTokens?: readonly { readonly name: string; readonly token: string; readonly role: 'admin' | 'viewer' }[];
}

interface WorkerInfo {
  readonly name: string;
  readonly address: string;
  proc: ChildProcess | undefined;
}

/** A pod given this variable with the cluster's directory as its value is found by podProcesses(). */
export const POD_MARKER = 'FLOTILLA_TEST_CLUSTER';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const VIEWER_TOKEN = 'test-viewer-token-0123456789';
export const JOIN_TOKEN = 'test-join-token-0123456789';

export class ProcessCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'flotilla-chaos-'));
  readonly file = join(this.dir, 'cluster.yaml');
  readonly secret = 'chaos-test-secret-0123456789';
  readonly masters: MasterInfo[] = [];
  readonly workers: WorkerInfo[] = [];
  /** Every leadership any master announced: term → names (the Election Safety evidence). */
  readonly leaderTerms = new Map<number, Set<string>>();
  /** Each master's log lines that are not JSON (startup errors). */
  readonly complaints: string[] = [];
  /** Every time a master process ended (killed by a test, or by itself), with its clock. */
  readonly exits: { name: string; code: number | null; signal: NodeJS.Signals | null; at: number }[] = [];
  /** Every master's log messages, in the order this process read them, with its clock. */
  readonly messages: { name: string; msg: string; at: number; line: Record<string, unknown> }[] = [];
  /** Data directories on their own tmpfs (unmounted by stop(), or when this process exits). */
  private readonly mounts: string[] = [];

  private constructor(
    private readonly nodeArgs: readonly string[],
    private readonly scheme: 'http' | 'https',
  ) {}

  static async create(options: ProcessClusterOptions): Promise<ProcessCluster> {
    const c = new ProcessCluster(options.nodeArgs ?? [], options.insecureHttp === true ? 'http' : 'https');
    const proxied = options.proxied ?? true;
    const lines = [`cluster: chaos`, `secret: ${c.secret}`];
    const t = options.timing ?? { tickMs: 25, electionTicks: 12, heartbeatTicks: 2 };
    lines.push(`raft: { tickMs: ${t.tickMs}, electionTicks: ${t.electionTicks}, heartbeatTicks: ${t.heartbeatTicks} }`);
    if (options.api === true) {
      lines.push('tokens:', `  - { name: admin, token: ${ADMIN_TOKEN}, role: admin }`, `  - { name: viewer, token: ${VIEWER_TOKEN}, role: viewer }`);
      for (const t of options.extraTokens ?? []) lines.push(`  - { name: ${t.name}, token: ${t.token}, role: ${t.role} }`);
      lines.push(`joinToken: ${JOIN_TOKEN}`);
      if (options.insecureHttp === true) lines.push('insecureHttp: true');
    }
    if (options.controlPlane === false) lines.push('controlPlane: false');
    if (options.nodeLifecycle !== undefined) lines.push(`nodeLifecycle: ${JSON.stringify(options.nodeLifecycle)}`);
    if (options.apiServer !== undefined) lines.push(`apiServer: ${JSON.stringify(options.apiServer)}`);
    if (options.historyRevisions !== undefined) lines.push(`store: { historyRevisions: ${options.historyRevisions} }`);
    lines.push('masters:');
    const joiners = options.joiners ?? 0;
    for (let k = 1; k <= options.masters + joiners; k++) {
      const ip = `127.0.0.${10 + k}`;
      const m: MasterInfo = { name: `m${k}`, ip, peerPort: await freePort(ip), clientPort: await freePort(ip), apiPort: options.api === true ? await freePort(ip) : 0, proc: undefined, proxy: undefined };
      let peer = `${ip}:${m.peerPort}`;
      if (proxied) {
        const proxyIp = `127.0.1.${10 + k}`;
        const proxyPort = await freePort(proxyIp);
        m.proxy = await FaultProxy.start({ host: proxyIp, port: proxyPort }, { host: ip, port: m.peerPort });
        peer = `${proxyIp}:${proxyPort}`;
      }
      const join = k > options.masters ? ', join: true' : '';
      const api = options.api === true ? `, api: "${ip}:${m.apiPort}"` : '';
      lines.push(`  - { name: ${m.name}, peer: "${peer}", peerListen: "${ip}:${m.peerPort}", client: "${ip}:${m.clientPort}"${api}, data: ${m.name}${join} }`);
      c.masters.push(m);
    }
    if ((options.workers ?? 0) > 0) {
      lines.push('workers:');
      for (let k = 1; k <= options.workers!; k++) {
        const w: WorkerInfo = { name: `w${k}`, address: `127.0.2.${k}`, proc: undefined };
        lines.push(`  - { name: ${w.name}, address: ${w.address}, data: ${w.name}, labels: { flotilla.io/test: "yes" } }`);
        c.workers.push(w);
      }
    }
    writeFileSync(c.file, `${lines.join('\n')}\n`);
    clusters.add(c);
    if (options.tmpfsMb !== undefined) {
      for (const m of c.masters) {
        const dir = c.dataDir(m.name);
        mkdirSync(dir, { recursive: true });
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${options.tmpfsMb}m`, 'tmpfs', dir]);
        c.mounts.push(dir);
      }
    }
    return c;
  }

  /** Where a master itself listens for peers (behind its fault proxy, if any). */
  peerListen(name: string): { ip: string; peerPort: number } {
    const m = this.info(name);
    return { ip: m.ip, peerPort: m.peerPort };
  }

  /** A master's data directory. */
  dataDir(name: string): string {
    return join(this.dir, this.info(name).name);
  }

  unmount(): void {
    for (const d of this.mounts.splice(0)) {
      try {
        execFileSync('umount', ['-l', d]);
      } catch {
        // already gone
      }
    }
  }

  /** Runs a `flotilla` command against this cluster's file (e.g. member add); never throws. */
  cli(args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args, '--config', this.file], { timeout: timeoutMs }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      });
    });
  }

  /**
   * What an operator does for a master whose data is lost or damaged: stop it, `flotilla member
   * remove`, empty its data directory, start it with --join, `flotilla member add`.
   */
  async reAdd(name: string): Promise<void> {
    await this.kill(name);
    const removed = await this.cli(['member', 'remove', '--name', name]);
    if (removed.code !== 0) throw new Error(`member remove ${name} failed: ${removed.stderr}`);
    const dir = this.dataDir(name);
    for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
    const starting = this.start(name, ['--join']);
    const added = await this.cli(['member', 'add', '--name', name]);
    if (added.code !== 0) throw new Error(`member add ${name} failed: ${added.stderr}`);
    await starting;
  }

  /**
   * Starts a master that is expected to refuse to start; resolves with what it said on stderr
   * (taken out of `complaints`, since it was expected), or rejects if it started.
   */
  async startRefused(name: string): Promise<string> {
    const before = this.complaints.length;
    try {
      await this.start(name);
    } catch {
      const said = this.complaints.splice(before).join('\n');
      return said;
    }
    throw new Error(`${name} started, but was expected to refuse`);
  }

  get names(): string[] {
    return this.masters.map((m) => m.name);
  }

  clientUrls(): string[] {
    return this.masters.map((m) => `ws://${m.ip}:${m.clientPort}`);
  }

  apiUrl(name: string): string {
    const m = this.info(name);
    return `${this.scheme}://${m.ip}:${m.apiPort}`;
  }

  /** Resolves once the master's API answers /readyz (it starts once the cluster has a leader). */
  async apiReady(name: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const get = this.scheme === 'https' ? httpsGet : httpGet;
        const req = get(`${this.apiUrl(name)}/readyz`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`the API of ${name} did not come up within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The cluster CA certificate (from a master's data directory, where its API wrote it). */
  caCert(): string {
    for (const m of this.masters) {
      try {
        return readFileSync(join(this.dir, m.name, 'api', 'ca.crt'), 'utf8');
      } catch {
        // not this one
      }
    }
    throw new Error('no master has written the cluster CA yet');
  }

  private info(name: string): MasterInfo {
    const m = this.masters.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no master ${name}`);
    return m;
  }

  /**
   * Spawns `flotilla <args>` as `name`, feeding its JSON log lines to `onLine` (and to the trace
   * file); lines that are not JSON go to `complaints`. The process is tracked by pid.
   */
  private spawnFlotilla(name: string, args: readonly string[], onLine: (line: Record<string, unknown>, msg: string) => void): ChildProcess {
    const proc = spawn(process.execPath, [...this.nodeArgs, BIN, ...args, '--config', this.file, '--name', name], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(proc);
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      if (TRACE !== undefined) appendFileSync(TRACE, `${name} ${line}\n`);
      if (!line.startsWith('{')) {
        this.complaints.push(`${name}: ${line}`);
        return;
      }
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // A crash report can print a line starting with "{" that is not a log line.
        this.complaints.push(`${name}: ${line}`);
        return;
      }
      onLine(parsed, typeof parsed['msg'] === 'string' ? parsed['msg'] : '');
    });
    proc.on('exit', () => live.delete(proc));
    return proc;
  }

  /** Starts a master process and resolves once it serves (rejects if it exits first). */
  start(name: string, extraArgs: readonly string[] = []): Promise<void> {
    const m = this.info(name);
    if (m.proc !== undefined) throw new Error(`${name} is already running`);
    return new Promise((resolve, reject) => {
      let started = false;
      const proc = this.spawnFlotilla(name, ['master', ...extraArgs], (parsed, msg) => {
        if ((parsed['level'] as number) >= 30) this.messages.push({ name, msg, at: Date.now(), line: parsed });
        const won = /^became leader in term (\d+)$/.exec(msg);
        if (won !== null) {
          const term = Number(won[1]);
          const names = this.leaderTerms.get(term) ?? new Set<string>();
          names.add(name);
          this.leaderTerms.set(term, names);
        }
        if (!started && msg === `master ${name} started`) {
          started = true;
          resolve();
        }
      });
      m.proc = proc;
      proc.on('exit', (code, signal) => {
        if (m.proc === proc) m.proc = undefined;
        this.exits.push({ name, code, signal, at: Date.now() });
        if (!started) reject(new Error(`${name} exited before serving (${signal ?? code}): ${this.complaints.filter((c) => c.startsWith(name)).join('; ')}`));
      });
    });
  }

  private worker(name: string): WorkerInfo {
    const w = this.workers.find((x) => x.name === name);
    if (w === undefined) throw new Error(`no worker ${name}`);
    return w;
  }

  /** Starts a worker agent process and resolves once it has registered its node. */
  startAgent(name: string): Promise<void> {
    const w = this.worker(name);
    if (w.proc !== undefined) throw new Error(`${name} is already running`);
    return new Promise((resolve, reject) => {
      let started = false;
      const proc = this.spawnFlotilla(name, ['agent'], (_, msg) => {
        if (!started && msg === `agent ${name} started`) {
          started = true;
          resolve();
        }
      });
      w.proc = proc;
      proc.on('exit', (code, signal) => {
        if (w.proc === proc) w.proc = undefined;
        if (!started) reject(new Error(`agent ${name} exited before starting (${signal ?? code}): ${this.complaints.filter((c) => c.startsWith(name)).join('; ')}`));
      });
    });
  }

  /** Signals a worker agent by its pid and waits until it is gone. */
  async killAgent(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.worker(name).proc;
    if (proc?.pid === undefined) return;
    const gone = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid, signal);
    await gone;
  }

  agentPid(name: string): number | undefined {
    return this.worker(name).proc?.pid;
  }

  /**
   * The pids of every process whose command line mentions this cluster's directory, or whose
   * environment has POD_MARKER set to it: pod processes started by its agents (tests pass the
   * directory as an argument to their pods, or set the variable).
   */
  podProcesses(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue; // a zombie: already dead
        if (cmdline.includes(`${BIN}\0agent`) || cmdline.includes(`${BIN}\0master`)) continue;
        if (cmdline.includes(this.dir) || readFileSync(`/proc/${entry}/environ`, 'utf8').includes(`\0${POD_MARKER}=${this.dir}\0`)) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  /** CPU time (user + system, ms) each running master has used so far, from /proc (Linux). */
  cpuMs(): number {
    let total = 0;
    for (const m of this.masters) {
      const pid = m.proc?.pid;
      if (pid === undefined) continue;
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        total += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ = 100
      } catch {
        // gone
      }
    }
    return total;
  }

  /** A running master's pid (undefined when it is not running). */
  masterPid(name: string): number | undefined {
    return this.info(name).proc?.pid;
  }

  running(name: string): boolean {
    return this.info(name).proc !== undefined;
  }

  /** Kills a master by its pid and waits until it is gone. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.info(name).proc;
    if (proc?.pid === undefined) return;
    const gone = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid, signal);
    await gone;
  }

  /** Cuts every link between `name` and the other masters, both ways. */
  isolate(name: string): void {
    const m = this.info(name);
    m.proxy?.block('everyone');
    for (const other of this.masters) if (other !== m) other.proxy?.block([m.ip]);
  }

  heal(): void {
    for (const m of this.masters) m.proxy?.heal();
  }

  statuses(timeoutMs = 500): Promise<MasterStatus[]> {
    return collectStatus(loadClusterFile(this.file), timeoutMs);
  }

  /** The master a majority of reachable masters agree leads, once there is one. */
  async leader(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.statuses();
      const leaders = s.filter((x) => x.role === 'leader');
      const top = Math.max(...s.map((x) => x.term ?? 0));
      const current = leaders.find((x) => x.term === top);
      const followers = s.filter((x) => x.leader === current?.name).length;
      if (current !== undefined && followers > this.masters.length / 2) return current.name;
      if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms: ${JSON.stringify(s.map((x) => [x.name, x.role, x.term]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until every master answers and all have applied the same log (same index and digest). */
  async converged(timeoutMs = 30_000): Promise<MasterStatus[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.statuses();
      if (s.every((x) => x.reachable && x.serving && x.appliedIndex === s[0]!.appliedIndex && x.appliedHash === s[0]!.appliedHash)) return s;
      if (Date.now() > deadline) throw new Error(`masters did not converge: ${JSON.stringify(s.map((x) => [x.name, x.reachable, x.appliedIndex, x.appliedHash?.slice(0, 8), x.serving ? 'serving' : x.notServing]))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    // Agents first, gracefully: they stop their pods. Then whatever pod process is left (of
    // agents killed earlier) is killed by its pid.
    await Promise.all(
      this.workers.map(async (w) => {
        const proc = w.proc;
        if (proc?.pid === undefined) return;
        const gone = new Promise((r) => proc.once('exit', r));
        process.kill(proc.pid, 'SIGTERM');
        const timer = setTimeout(() => proc.pid !== undefined && process.kill(proc.pid, 'SIGKILL'), 8000);
        await gone;
        clearTimeout(timer);
      }),
    );
    clusters.delete(this);
    for (const pid of this.podProcesses()) killTree(pid);
    for (const m of this.masters) {
      if (m.proc?.pid !== undefined) {
        try {
          process.kill(m.proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await m.proxy?.close();
    }
    // Processes killed a moment ago may still hold files on the mounts: lazy unmounts.
    this.unmount();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

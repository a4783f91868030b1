// Container probes as the kubelet runs them (pkg/kubelet/prober): one attempt of an exec,
// HTTP GET or TCP probe (runProbe), and a worker that repeats one probe of one container every
// period and turns the attempts into a state with the success and failure thresholds
// (ProbeWorker). What a state change means — restart on liveness, the Ready condition on
// readiness, starting the other probes on startup — is the kubelet's business, not this file's.
//
// Containers run on the node's network: a probe's port is a container port (a number or a
// port's name), which the target maps to the host port the container was told to listen on.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { request } from 'node:http';
import { connect, isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { Probe } from '@flotilla/api';

export type ProbeResult = { ok: boolean; message: string };

export type ProbeKind = 'liveness' | 'readiness' | 'startup';

/** Where a probe runs: the pod's address, its ports, and the container's environment for exec. */
export interface ProbeTarget {
  /** The pod's IP (the node's address): the default host of HTTP and TCP probes. */
  readonly host: string;
  /** A probe port (a containerPort number or a port's name) to the port the container listens on; undefined if unknown. */
  readonly resolvePort: (port: number | string) => number | undefined;
  /** The container's complete environment, for exec probes. */
  readonly env: Record<string, string>;
  readonly cwd?: string;
}

/** Kubernetes' defaults (pkg/apis/core/v1/defaults.go); a zero or missing value takes the default. */
const DEFAULT_PERIOD_SECONDS = 10;
const DEFAULT_TIMEOUT_SECONDS = 1;
const DEFAULT_SUCCESS_THRESHOLD = 1;
const DEFAULT_FAILURE_THRESHOLD = 3;
/** As the kubelet, which keeps at most 10 KiB of a probe's output or body for its message. */
const MAX_OUTPUT_BYTES = 10 * 1024;

/** One probe attempt, bounded by the probe's timeoutSeconds (default 1) and the signal. */
export async function runProbe(probe: Probe, target: ProbeTarget, signal?: AbortSignal): Promise<ProbeResult> {
  const timeoutMs = positive(probe.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS) * 1000;
  if (signal?.aborted) return { ok: false, message: 'probe cancelled' };
  if (probe.exec !== undefined) return runExec(probe.exec.command, target, timeoutMs, signal);
  if (probe.httpGet !== undefined) {
    const port = target.resolvePort(probe.httpGet.port);
    if (port === undefined) return unknownPort(probe.httpGet.port);
    return runHttpGet(probe.httpGet.host || target.host, port, probe.httpGet.path, timeoutMs, signal);
  }
  if (probe.tcpSocket !== undefined) {
    const port = target.resolvePort(probe.tcpSocket.port);
    if (port === undefined) return unknownPort(probe.tcpSocket.port);
    return runTcp(probe.tcpSocket.host || target.host, port, timeoutMs, signal);
  }
  return { ok: false, message: 'missing probe handler: set one of exec, httpGet or tcpSocket' };
}

function unknownPort(port: number | string): ProbeResult {
  return { ok: false, message: `couldn't find port ${JSON.stringify(port)} in the container: use a containerPort the container declares, or its name` };
}

/**
 * exec: success is exit code 0. The command runs in its own process group with the
 * container's environment, and the whole group is killed on timeout (or cancel), so a shell
 * and what it started do not outlive the probe.
 */
function runExec(command: readonly string[], target: ProbeTarget, timeoutMs: number, signal: AbortSignal | undefined): Promise<ProbeResult> {
  const [file, ...args] = command;
  if (file === undefined || file === '') return Promise.resolve({ ok: false, message: 'exec probe has an empty command: give the program to run in exec.command' });
  const shown = JSON.stringify(command.join(' '));
  return new Promise((resolve) => {
    let output = '';
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(file, args, { env: target.env, ...(target.cwd === undefined ? {} : { cwd: target.cwd }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // spawn() throws at once for arguments it cannot pass (a NUL byte, a non-string).
      resolve({ ok: false, message: `exec probe ${shown} cannot run: ${(err as Error).message}` });
      return;
    }
    const collect = (chunk: Buffer): void => {
      if (output.length < MAX_OUTPUT_BYTES) output += chunk.toString('utf8').slice(0, MAX_OUTPUT_BYTES - output.length);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve(result);
    };
    const exited = (): ProbeResult => {
      const text = output.trim();
      if (exit?.code === 0) return { ok: true, message: text };
      const how = exit?.code !== null && exit?.code !== undefined ? `exited with code ${exit.code}` : `was killed by ${exit?.signal ?? 'a signal'}`;
      return { ok: false, message: `command ${shown} ${how}${text === '' ? '' : `: ${text}`}` };
    };
    const cancel = (): void => {
      killGroup();
      finish({ ok: false, message: 'probe cancelled' });
    };
    // A process that exited but left a child holding its output open is judged by its exit
    // code when the time is up; the leftover child is killed with the group.
    const timer = setTimeout(() => {
      killGroup();
      finish(exit !== undefined ? exited() : { ok: false, message: `command ${shown} timed out after ${timeoutMs / 1000}s` });
    }, timeoutMs);
    signal?.addEventListener('abort', cancel, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'executable file not found (give a path or a program on the container\'s PATH)' : err.code === 'EACCES' ? 'permission denied (is it executable?)' : err.message;
      finish({ ok: false, message: `exec ${JSON.stringify(file)}: ${why}` });
    });
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig };
    });
    child.on('close', () => finish(exited()));
  });
}

/** httpGet: success is a status in 200–399 (redirects are not followed, which Kubernetes counts as success too). */
function runHttpGet(host: string, port: number, path: string | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<ProbeResult> {
  const url = `http://${hostPort(host, port)}${path === undefined || path === '' ? '/' : path.startsWith('/') ? path : `/${path}`}`;
  const failed = (why: string): ProbeResult => ({ ok: false, message: `Get ${JSON.stringify(url)}: ${why}` });
  return new Promise((resolve) => {
    let req: ReturnType<typeof request>;
    try {
      req = request(url, { method: 'GET', agent: false, headers: { 'User-Agent': 'kube-probe/flotilla', Accept: '*/*', Connection: 'close' } });
    } catch (err) {
      // A path with characters a request line cannot carry.
      resolve(failed((err as Error).message));
      return;
    }
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
      req.destroy();
      resolve(result);
    };
    const cancel = (): void => finish({ ok: false, message: 'probe cancelled' });
    const timer = setTimeout(() => finish(failed('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')), timeoutMs);
    signal?.addEventListener('abort', cancel, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => finish(failed(dialError(err, host, port))));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_OUTPUT_BYTES) body += chunk.slice(0, MAX_OUTPUT_BYTES - body.length);
      });
      res.on('error', () => {});
      const done = (): void => {
        if (status >= 200 && status < 400) finish({ ok: true, message: body.trim() });
        else finish({ ok: false, message: `HTTP probe failed with statuscode: ${status}` });
      };
      // The status decides: a body cut short ends the attempt with the same answer.
      res.on('close', done);
    });
    req.end();
  });
}

/** tcpSocket: success is an established connection, closed at once. */
function runTcp(host: string, port: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = connect({ host, port });
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
      socket.destroy();
      resolve(result);
    };
    const cancel = (): void => finish({ ok: false, message: 'probe cancelled' });
    const timer = setTimeout(() => finish({ ok: false, message: `dial tcp ${hostPort(host, port)}: i/o timeout` }), timeoutMs);
    signal?.addEventListener('abort', cancel, { once: true });
    socket.on('connect', () => finish({ ok: true, message: '' }));
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, message: dialError(err, host, port) }));
  });
}

/** A connection error in Go's words, as Kubernetes' probe messages show it. */
function dialError(err: NodeJS.ErrnoException, host: string, port: number): string {
  const dial = `dial tcp ${hostPort(host, port)}`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return `${dial}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `${dial}: connect: no route to host`;
    case 'ENETUNREACH':
      return `${dial}: connect: network is unreachable`;
    case 'EADDRNOTAVAIL':
      return `${dial}: connect: cannot assign requested address`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    default:
      return err.message;
  }
}

function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function positive(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : fallback;
}

/**
 * Runs one probe of one container over time, as the kubelet's prober worker: nothing before
 * initialDelaySeconds, then one attempt every periodSeconds (an attempt never overlaps the
 * next). `successThreshold` consecutive successes make it healthy, `failureThreshold`
 * consecutive failures unhealthy; onChange is called on each flip. Initial states are
 * Kubernetes' (prober/worker.go): liveness starts healthy, readiness not ready, and startup
 * unknown (undefined), so that failureThreshold failures of a startup probe are reported
 * (onChange(false): the kubelet kills the container) while a readiness probe that never
 * succeeded reports nothing. A startup probe stops once it succeeds: the container has
 * started, and Kubernetes never runs it again for that container.
 */
export class ProbeWorker {
  private state: boolean | undefined;
  private lastOk: boolean | undefined;
  /** Consecutive attempts with the same result as lastOk. */
  private run = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: AbortController | undefined;
  private running = false;

  constructor(
    readonly kind: ProbeKind,
    private readonly probe: Probe,
    private readonly target: ProbeTarget,
    private readonly onChange: (healthy: boolean, result: ProbeResult) => void,
  ) {
    this.state = kind === 'liveness' ? true : kind === 'readiness' ? false : undefined;
  }

  /** The current state: true healthy (live, ready, started), false not, undefined not known yet (startup). */
  get healthy(): boolean | undefined {
    return this.state;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(Math.max(0, this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  /** Stops probing; an attempt in flight is cancelled and its result ignored. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
    this.inFlight = undefined;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    const startedAt = Date.now();
    const abort = new AbortController();
    this.inFlight = abort;
    const result = await runProbe(this.probe, this.target, abort.signal).catch((err: unknown): ProbeResult => ({ ok: false, message: `the probe could not run: ${(err as Error).message}` }));
    if (!this.running || abort.signal.aborted) return;
    this.inFlight = undefined;
    this.record(result);
    if (!this.running) return;
    if (this.kind === 'startup' && this.state) {
      this.running = false;
      return;
    }
    const periodMs = positive(this.probe.periodSeconds, DEFAULT_PERIOD_SECONDS) * 1000;
    this.schedule(Math.max(0, periodMs - (Date.now() - startedAt)));
  }

  /** The thresholds, as the prober worker's resultRun: a state flips after enough attempts in a row. */
  private record(result: ProbeResult): void {
    this.run = result.ok === this.lastOk ? this.run + 1 : 1;
    this.lastOk = result.ok;
    const threshold = result.ok ? positive(this.probe.successThreshold, DEFAULT_SUCCESS_THRESHOLD) : positive(this.probe.failureThreshold, DEFAULT_FAILURE_THRESHOLD);
    if (this.run < threshold || this.state === result.ok) return;
    this.state = result.ok;
    this.onChange(result.ok, result);
  }
}

// The process runtime: every container is a process on the node itself, in its own session.
//
// What runs. The process runtime has no images and pulls nothing:
//   - if the container has a `command`, it runs command[0] with command[1..] + args (the image,
//     if any, is only reported back in the status);
//   - if `command` is empty and `image` is an absolute path to an executable file on the node,
//     it runs that file with args;
//   - anything else (e.g. image "nginx:1.25") is refused at create() with ImageNotRunnable.
// A program named without a slash is looked up in the container's own PATH (config.env.PATH, or
// /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin when it has none), one with a
// slash relative to the working directory; a program that is missing or not executable is
// refused before anything is spawned (CommandNotFound). The working directory is workingDir,
// or / (as a container image without WORKDIR); the environment is exactly config.env.
//
// How it runs. Containers are started by the spawner (spawner.ts: one long-lived shell that
// forks them, because Node's spawn() forks the whole agent, tens of milliseconds each), or by
// Node's spawn(…, { detached: true }) where the spawner cannot run (no setsid). Either way the
// container is a session and process-group leader (pgid = pid), so stop() signals the whole
// tree: SIGTERM to the group, SIGKILL to the group after graceMs. When the main process exits,
// whatever is left of its group is SIGKILLed, as a container's processes die with it. (A
// descendant that starts its own session escapes.) stdout and stderr go to one log file the
// child holds open itself (logs.ts), so it keeps running and logging while the agent restarts.
// Limits go through cgroup v2 when the node allows it (cgroup.ts).
//
// Exits. Of the processes it started the agent gets the exit status (from the spawner's wait,
// or Node's 'exit' event): exitCode (128 + n for signal n, as container runtimes report it),
// signal, and reason Completed (0), Error, or OOMKilled when the container's cgroup recorded an
// OOM kill. A program the spawner cannot exec exits with 126 or 127 (as env(1) and the shell
// report it, with the reason in the container's log); one Node's spawn() cannot start is
// exited with exitCode 128 and reason StartError, and start() throws.
//
// Recovery. Each container has a record on disk (state.ts). recover() in a new agent adopts the
// processes that still run (same pid and start time) and notices their exit by polling /proc
// every 500 ms; the exit status of a process that is not our child cannot be read, so their
// exitCode is undefined and reason ContainerStatusUnknown (OOMKilled if the cgroup says so).
// A process spawned in the instant between spawn() and its record reaching the disk is not
// found again if the agent crashes right then.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { hostname, constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@flotilla/wire';
import { createContainerCgroup, removeCgroup, setUpCgroups, wasOomKilled, wrapInCgroup, type CgroupSetup } from './cgroup.ts';
import { fromRecord, info, newContainer, toRecord, type Container } from './container.ts';
import { containerLogDir, deleteLog, listAttempts, logFile, pruneLogs, rotateIfNeeded, streamLog } from './logs.ts';
import { isAlive, readProcStat, sessionMembers } from './proc.ts';
import { resolveProgram } from './program.ts';
import { Spawner } from './spawner.ts';
import { RecordStore } from './state.ts';
import { RuntimeError, type ContainerConfig, type ContainerInfo, type ContainerRuntime, type LogOptions, type LogSink } from './types.ts';

export interface ProcessRuntimeOptions {
  /** Holds `containers/` (records) and `pods/` (logs); the same directory after a restart. */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** A log file larger than this is rotated (default 10 MiB). */
  readonly maxLogBytes?: number;
  /** A cgroup v2 directory to use instead of the agent's own (tests use a fake one). */
  readonly cgroupRoot?: string;
  /** Names this agent's cgroup (`flotilla-<nodeName>`); default: the host name. */
  readonly nodeName?: string;
  /**
   * Start containers through the spawner shell (spawner.ts; default true where setsid and env
   * exist) rather than Node's spawn(), which forks the whole agent for every container.
   */
  readonly spawner?: boolean;
}

const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;
const ROTATE_CHECK_MS = 1000;
const ADOPTED_POLL_MS = 500;
/** While stopping an adopted process, its exit is looked for this often. */
const STOPPING_POLL_MS = 20;
/** How long a cgroup that is still emptying may keep its directory. */
const CGROUP_REMOVE_TRIES = 50;
const CGROUP_REMOVE_RETRY_MS = 100;
/** Pod uids and container names become path segments. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export class ProcessRuntime implements ContainerRuntime {
  readonly name = 'process';
  readonly limits: { readonly enforced: boolean; readonly note: string };

  private readonly dataDir: string;
  private readonly logger: Logger;
  private readonly maxLogBytes: number;
  private readonly cgroups: CgroupSetup;
  private readonly records: RecordStore;
  /** In creation order. */
  private readonly containers = new Map<string, Container>();
  private readonly exitListeners: ((info: ContainerInfo) => void)[] = [];
  /** Open log streams, ended by close(). */
  private readonly streams = new Set<{ cancel: () => void; end: () => void }>();
  private readonly rotating = new Set<string>();
  private readonly rotateTimer: NodeJS.Timeout;
  private adoptedTimer: NodeJS.Timeout | undefined;
  private readonly useSpawner: boolean;
  private spawner: Spawner | undefined;
  private closed = false;

  constructor(options: ProcessRuntimeOptions) {
    this.dataDir = options.dataDir;
    this.logger = options.logger ?? silentLogger;
    this.maxLogBytes = options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
    this.useSpawner = options.spawner ?? true;
    try {
      this.records = new RecordStore(this.dataDir);
    } catch (err) {
      throw new RuntimeError('RuntimeNotReady', `cannot use the data directory ${this.dataDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    this.cgroups = setUpCgroups(options.nodeName ?? hostname(), options.cgroupRoot);
    this.limits = { enforced: this.cgroups.enforced, note: this.cgroups.note };
    this.logger.info({ enforced: this.limits.enforced }, this.limits.note);
    this.rotateTimer = setInterval(() => this.rotateLogs(), ROTATE_CHECK_MS).unref();
  }

  async recover(): Promise<ContainerInfo[]> {
    const records = this.records.loadAll((file, problem) => this.logger.warn({ file, problem }, 'skipping a corrupt container record (deleted)'));
    records.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.attempt - b.attempt);
    const found: ContainerInfo[] = [];
    for (const record of records) {
      if (this.containers.has(record.id)) continue;
      const c = fromRecord(record);
      this.containers.set(c.id, c);
      if (c.state === 'running' && c.pid !== undefined && isAlive(c.pid, c.startTime)) {
        c.adopted = true;
        this.logger.info({ id: c.id, pid: c.pid }, 'adopted a container that ran before the agent restarted');
      } else if (c.state !== 'exited') {
        // It ended while no agent watched (or, if only created, never started: its environment
        // was not kept, so it cannot be started now either).
        this.killLeftovers(c);
        this.recordExit(c, { reason: 'ContainerStatusUnknown' });
        this.cleanUpCgroup(c);
      } else {
        this.cleanUpCgroup(c);
      }
      found.push(info(c));
    }
    if ([...this.containers.values()].some((c) => c.adopted && c.state === 'running')) this.watchAdopted();
    await this.records.flush();
    return found;
  }

  async create(config: ContainerConfig): Promise<ContainerInfo> {
    this.mustBeOpen();
    for (const [what, value] of [['pod uid', config.podUid], ['container name', config.containerName]] as const) {
      if (!SAFE_NAME.test(value)) throw new RuntimeError('CreateContainerError', `the ${what} "${value}" cannot name a directory on the node: use letters, digits, ".", "_" and "-"`);
    }
    if (!Number.isInteger(config.attempt) || config.attempt < 0) throw new RuntimeError('CreateContainerError', `attempt ${config.attempt} is not a non-negative integer`);
    const id = `${config.podUid}_${config.containerName}_${config.attempt}`;
    if (this.containers.has(id)) throw new RuntimeError('CreateContainerError', `container ${id} already exists on this node; remove it first or create attempt ${config.attempt + 1}`);
    const { program, args } = resolveProgram(config);

    const logDir = containerLogDir(this.dataDir, config.podUid, config.containerName);
    const logPath = logFile(logDir, config.attempt);
    try {
      mkdirSync(logDir, { recursive: true });
      // Keep this run and the one before it (for `previous`), and any run still going.
      const older = listAttempts(logDir).filter((a) => a < config.attempt);
      const keep = new Set([config.attempt, ...older.slice(-1)]);
      for (const c of this.containers.values()) {
        if (c.podUid === config.podUid && c.containerName === config.containerName && c.state === 'running') keep.add(c.attempt);
      }
      pruneLogs(logDir, keep);
      deleteLog(logPath); // a leftover of a forgotten container with the same attempt
      closeSync(openSync(logPath, 'a'));
    } catch (err) {
      throw new RuntimeError('CreateContainerError', `cannot create the log file ${logPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }

    const c = newContainer({
      id,
      podUid: config.podUid,
      podNamespace: config.podNamespace,
      podName: config.podName,
      containerName: config.containerName,
      attempt: config.attempt,
      image: config.image,
      program,
      args,
      logPath,
      createdAt: new Date(),
    });
    c.config = config;
    this.containers.set(id, c);
    await this.persist(c);
    return info(c);
  }

  async start(id: string): Promise<ContainerInfo> {
    this.mustBeOpen();
    const c = this.mustGet(id);
    if (c.state !== 'created') throw new RuntimeError('RunContainerError', `container ${id} is ${c.state}; only a created container can be started (create attempt ${c.attempt + 1})`);
    const config = c.config;
    if (config === undefined) throw new RuntimeError('RunContainerError', `container ${id} was created by an earlier run of the agent; create it again`);
    // Checked again: the program may have gone since create().
    const { program, args } = resolveProgram(config);
    const cwd = config.workingDir ?? '/';

    let argv = { program, args: [...args] };
    if (this.cgroups.enforced) {
      try {
        c.cgroupDir = createContainerCgroup(this.cgroups.base, id, config.limits);
      } catch (err) {
        this.cleanUpCgroup(c);
        throw new RuntimeError('RunContainerError', `cannot set the container's CPU and memory limits: ${(err as Error).message}`);
      }
      argv = wrapInCgroup(c.cgroupDir, program, args, config.env);
    }

    let logFd: number;
    try {
      logFd = openSync(c.logPath, 'a');
    } catch (err) {
      this.cleanUpCgroup(c);
      throw new RuntimeError('RunContainerError', `cannot open the log file ${c.logPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let pid: number | undefined;
    let spawnError: unknown;
    const spawner = this.spawnerToUse();
    if (spawner !== undefined) {
      closeSync(logFd); // the spawner opens the log itself
      try {
        pid = await spawner.spawn({ program: argv.program, args: argv.args, env: config.env, cwd, logPath: c.logPath }, (status, exitedPid) => {
          if (this.closed) return; // a new agent will adopt it
          this.killGroup(exitedPid);
          const signal = status > 128 ? signalName(status - 128) : undefined;
          this.finish(c, signal === undefined ? { exitCode: status } : { exitCode: status, signal });
        });
      } catch (err) {
        spawnError = err;
      }
    } else {
      let child: ChildProcess | undefined;
      try {
        child = spawn(argv.program, argv.args, { env: { ...config.env }, cwd, detached: true, stdio: ['ignore', logFd, logFd] });
      } catch (err) {
        spawnError = err;
      } finally {
        closeSync(logFd); // the child has its own copy
      }
      if (child !== undefined && child.pid === undefined) {
        // spawn() reports most failures (ENOENT, EACCES, …) in an 'error' event.
        spawnError = await new Promise<unknown>((resolve) => child!.once('error', resolve));
      }
      if (child?.pid !== undefined) {
        const childPid = child.pid;
        pid = childPid;
        c.child = child;
        child.on('error', (err) => this.logger.warn({ id, pid: childPid, err: err.message }, 'error from a container process'));
        child.on('exit', (code, signal) => {
          if (this.closed) return; // a new agent will adopt it
          this.killGroup(childPid);
          const exitCode = code ?? 128 + (signal !== null ? (osConstants.signals[signal] ?? 0) : 0);
          this.finish(c, signal !== null ? { exitCode, signal } : { exitCode });
        });
      }
    }
    if (pid === undefined) {
      this.cleanUpCgroup(c);
      c.config = undefined;
      this.recordExit(c, { exitCode: 128, reason: 'StartError' });
      throw new RuntimeError('RunContainerError', `cannot start ${program} in ${cwd}: ${(spawnError as Error | undefined)?.message ?? 'no process was created'}`);
    }
    c.config = undefined;
    c.pid = pid;
    // Read now: the child cannot have been reaped yet (that happens on a later turn of the loop).
    c.startTime = readProcStat(pid)?.startTime;
    c.state = 'running';
    c.startedAt = new Date();
    await this.persist(c);
    return info(c);
  }

  async stop(id: string, graceMs: number): Promise<ContainerInfo> {
    this.mustBeOpen();
    const c = this.mustGet(id);
    if (c.state === 'created') {
      // Never ran: it simply will not.
      c.config = undefined;
      this.recordExit(c, {});
      await this.persist(c);
      return info(c);
    }
    if (c.state === 'exited') return info(c);
    const poll = c.adopted ? setInterval(() => this.checkAdopted(c), STOPPING_POLL_MS) : undefined;
    try {
      this.signal(c, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, graceMs));
      });
      const expired = await Promise.race([c.exited.then(() => false), graceOver]);
      clearTimeout(timer);
      if (expired) this.signal(c, 'SIGKILL');
      await c.exited;
    } finally {
      clearInterval(poll);
    }
    return info(c);
  }

  /**
   * Forgets a container (SIGKILLing its processes first if it still runs) and deletes its record
   * and log — except the log of the run just before a newer one of the same container that the
   * runtime still knows: that is the `previous` log, deleted when the run after is created. When
   * the last known run of a pod's container goes, its whole log directory goes.
   */
  async remove(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c === undefined) return;
    if (c.state === 'running') await this.stop(id, 0);
    this.containers.delete(id);
    this.cleanUpCgroup(c);
    const siblings = [...this.containers.values()].filter((o) => o.podUid === c.podUid && o.containerName === c.containerName);
    const logDir = containerLogDir(this.dataDir, c.podUid, c.containerName);
    try {
      if (siblings.length === 0) {
        rmSync(logDir, { recursive: true, force: true });
        removeIfEmpty(join(this.dataDir, 'pods', c.podUid));
      } else {
        const newest = Math.max(...siblings.map((o) => o.attempt));
        const isPrevious = newest > c.attempt && !siblings.some((o) => o.attempt > c.attempt && o.attempt < newest);
        if (!isPrevious) deleteLog(c.logPath);
      }
    } catch (err) {
      this.logger.warn({ id, err: (err as Error).message }, 'cannot delete the log of a removed container');
    }
    await this.records.delete(id).catch((err: unknown) => this.logger.error({ id, err: (err as Error).message }, 'cannot delete the record of a removed container'));
  }

  list(): ContainerInfo[] {
    return [...this.containers.values()].map(info);
  }

  get(id: string): ContainerInfo | undefined {
    const c = this.containers.get(id);
    return c === undefined ? undefined : info(c);
  }

  onExit(listener: (info: ContainerInfo) => void): void {
    this.exitListeners.push(listener);
  }

  logs(podUid: string, containerName: string, options: LogOptions, sink: LogSink): () => void {
    let ended = false;
    let cancelStream: (() => void) | undefined;
    let cancelled = false;
    const entry = {
      cancel: (): void => {
        cancelled = true;
        cancelStream?.();
        this.streams.delete(entry);
      },
      end: (): void => guarded.end(),
    };
    const guarded: LogSink = {
      data: (chunk) => {
        if (!ended) sink.data(chunk);
      },
      end: (error) => {
        if (ended) return;
        ended = true;
        this.streams.delete(entry);
        cancelStream?.();
        if (error === undefined) sink.end();
        else sink.end(error);
      },
    };

    const podName = [...this.containers.values()].find((c) => c.podUid === podUid)?.podName ?? podUid;
    if (!SAFE_NAME.test(podUid) || !SAFE_NAME.test(containerName)) {
      guarded.end({ code: 400, message: `container "${containerName}" in pod "${podName}" is not valid` });
      return entry.cancel;
    }
    const attempts = listAttempts(containerLogDir(this.dataDir, podUid, containerName));
    const attempt = options.previous === true ? attempts.at(-2) : attempts.at(-1);
    if (attempt === undefined) {
      guarded.end(
        options.previous === true && attempts.length > 0
          ? { code: 400, message: `previous terminated container "${containerName}" in pod "${podName}" not found` }
          : { code: 404, message: `container "${containerName}" in pod "${podName}" has no log on this node` },
      );
      return entry.cancel;
    }
    const c = [...this.containers.values()].find((o) => o.podUid === podUid && o.containerName === containerName && o.attempt === attempt);
    const path = logFile(containerLogDir(this.dataDir, podUid, containerName), attempt);
    const writer = options.follow === true && c !== undefined && c.state === 'running' ? { running: () => c.state === 'running' } : undefined;
    this.streams.add(entry);
    // A log is rotated (if due) before it is read, so a reader never gets more than about
    // maxLogBytes of the current file plus its rotated part.
    const ready = c?.state === 'running' ? this.rotate(path) : Promise.resolve();
    void ready.then(() => {
      if (!cancelled && !ended) cancelStream = streamLog(path, options, guarded, writer);
    });
    return entry.cancel;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.rotateTimer);
    clearInterval(this.adoptedTimer);
    for (const c of this.containers.values()) c.child?.unref();
    this.spawner?.close();
    this.spawner = undefined;
    for (const s of [...this.streams]) s.end();
    await this.records.flush();
  }

  /** The spawner shell (started on first use, again after it died), if it is to be used. */
  private spawnerToUse(): Spawner | undefined {
    if (!this.useSpawner) return undefined;
    this.spawner ??= Spawner.create(this.logger, (why) => {
      this.spawner = undefined;
      if (this.closed) return;
      // Exits of what it started can no longer be reported: watch those through /proc.
      this.logger.warn({ why }, 'the process spawner died; watching its containers through /proc and starting a new one');
      for (const c of this.containers.values()) if (c.state === 'running' && c.child === undefined) c.adopted = true;
      this.watchAdopted();
    });
    return this.spawner;
  }

  /** After close() the processes belong to the next agent: this one no longer watches them. */
  private mustBeOpen(): void {
    if (this.closed) throw new RuntimeError('RuntimeClosed', 'the process runtime is closed; create a new one (and recover()) to manage containers');
  }

  private mustGet(id: string): Container {
    const c = this.containers.get(id);
    if (c === undefined) throw new RuntimeError('ContainerNotFound', `no container ${id} on this node`);
    return c;
  }

  /** Sends `signal` to the container's process group; an adopted one is checked against pid reuse first. */
  private signal(c: Container, signal: NodeJS.Signals): void {
    if (c.pid === undefined || c.state !== 'running') return;
    if (c.adopted && !isAlive(c.pid, c.startTime)) {
      this.checkAdopted(c);
      return;
    }
    for (const target of [-c.pid, c.pid]) {
      try {
        process.kill(target, signal);
        return;
      } catch (err) {
        // ESRCH for the group: a process just forked by the spawner may not lead its group yet
        // (setsid runs right after): then it is signalled alone.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') {
          this.logger.warn({ id: c.id, pid: c.pid, signal, err: (err as Error).message }, 'cannot signal a container');
          return;
        }
      }
    }
  }

  /** SIGKILLs what is left of a process group whose leader, our child, was just reaped. */
  private killGroup(pgid: number): void {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left.
    }
  }

  /**
   * SIGKILLs what is left of a container whose leader was not our child: found by session id
   * and start time in /proc, since its pid may already belong to another process.
   */
  private killLeftovers(c: Container): void {
    if (c.pid === undefined || c.startTime === undefined) return;
    for (const pid of sessionMembers(c.pid, c.startTime)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }

  private watchAdopted(): void {
    if (this.adoptedTimer !== undefined || this.closed) return;
    this.adoptedTimer = setInterval(() => {
      let watching = false;
      for (const c of this.containers.values()) {
        if (!c.adopted || c.state !== 'running') continue;
        this.checkAdopted(c);
        watching ||= c.state === 'running';
      }
      if (!watching) {
        clearInterval(this.adoptedTimer);
        this.adoptedTimer = undefined;
      }
    }, ADOPTED_POLL_MS);
  }

  private checkAdopted(c: Container): void {
    if (this.closed || c.state !== 'running' || c.pid === undefined || isAlive(c.pid, c.startTime)) return;
    this.killLeftovers(c);
    this.finish(c, { reason: 'ContainerStatusUnknown' });
  }

  /** A container's process has exited: record it, clean up, tell the listeners. */
  private finish(c: Container, exit: { exitCode?: number; signal?: string; reason?: string }): void {
    if (c.state === 'exited') return;
    c.child = undefined;
    this.recordExit(c, exit);
    this.cleanUpCgroup(c);
    const snapshot = info(c);
    for (const listener of this.exitListeners) {
      try {
        listener(snapshot);
      } catch (err) {
        this.logger.error({ id: c.id, err: (err as Error).message }, 'an exit listener failed');
      }
    }
  }

  /** Moves `c` to exited, with the reason its exit implies, and saves it (in the background). */
  private recordExit(c: Container, exit: { exitCode?: number; signal?: string; reason?: string }): void {
    const oom = c.cgroupDir !== undefined && wasOomKilled(c.cgroupDir);
    c.state = 'exited';
    c.finishedAt = new Date();
    c.exitCode = exit.exitCode;
    c.signal = exit.signal;
    c.reason = oom ? 'OOMKilled' : (exit.reason ?? (exit.exitCode === undefined ? undefined : exit.exitCode === 0 ? 'Completed' : 'Error'));
    c.markExited();
    void this.persist(c);
  }

  /** Removes the container's cgroup, retrying while its last processes finish exiting. */
  private cleanUpCgroup(c: Container): void {
    const dir = c.cgroupDir;
    if (dir === undefined) return;
    let tries = 0;
    const attempt = (): void => {
      const problem = removeCgroup(dir);
      if (problem === undefined) return;
      if (++tries < CGROUP_REMOVE_TRIES) setTimeout(attempt, CGROUP_REMOVE_RETRY_MS).unref();
      else this.logger.warn({ id: c.id, dir, problem }, 'cannot remove a container cgroup');
    };
    attempt();
  }

  private persist(c: Container): Promise<void> {
    return this.records.save(toRecord(c)).catch((err: unknown) => {
      this.logger.error({ id: c.id, err: (err as Error).message }, 'cannot save a container record; after an agent restart this container may not be found');
    });
  }

  private rotateLogs(): void {
    for (const c of this.containers.values()) {
      if (c.state === 'running') void this.rotate(c.logPath);
    }
  }

  private async rotate(path: string): Promise<void> {
    if (this.rotating.has(path)) return;
    this.rotating.add(path);
    try {
      await rotateIfNeeded(path, this.maxLogBytes);
    } catch (err) {
      this.logger.warn({ path, err: (err as Error).message }, 'cannot rotate a container log');
    } finally {
      this.rotating.delete(path);
    }
  }
}

/** SIGKILL for 9, …; undefined for a number that is not a signal. */
function signalName(n: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}

function removeIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Already gone, or a new container appeared.
  }
}

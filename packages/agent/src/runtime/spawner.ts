// Starting processes quickly. Node's spawn() forks the whole agent (tens of milliseconds for a
// process of 100 MB on a laptop, with the event loop stopped meanwhile), so starting 100 pods
// at once took seconds. The spawner is one long-lived POSIX shell, started once, that forks
// containers on request: a fork of a small shell costs about a millisecond.
//
// The agent writes one line per container; the shell evaluates it:
//
//   { ( cd -- DIR || exit 126; unset PWD OLDPWD; export K=V…; exec SETSID PROGRAM ARGS… )
//       </dev/null >>LOG 2>&1 & p=$!; echo "S ID $p"; wait "$p"; echo "E $p $?"; } 2>/dev/null &
//
// The inner subshell becomes the container: setsid makes it a session and process-group leader
// (it is not one already, since a shell without job control keeps its children in its own
// group, so its pid is kept); the shell, which runs with an empty environment, exports exactly
// the container's variables (through env -i instead when a name is not a shell name, such as
// "my.var"), and the container writes to its
// log itself (O_APPEND), so it outlives the agent. The outer subshell waits for it and reports
// its status, 128 + n when signal n killed it, as `wait` says. Every word is single-quoted;
// a newline inside a value becomes '"$FLOTILLA_NL"' so that each request stays one line.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from '@flotilla/wire';
import { readProcStat } from './proc.ts';

export interface SpawnRequest {
  readonly program: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Where stdout and stderr go (appended). */
  readonly logPath: string;
}

const SHELL = '/bin/sh';
const SPAWN_TIMEOUT_MS = 10_000;
const LEADER_WAIT_MS = 1000;
/** Variable names a POSIX shell can export. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The shell variable holding a newline (a pod variable of this name goes through env -i). */
const NL = 'FLOTILLA_NL';
const LOOP = `${NL}='\n'\nwhile IFS= read -r line; do eval "$line"; done`;

/** A word for the shell: single-quoted, with quotes and newlines spelled out. */
export function shellWord(s: string): string {
  if (s.includes('\0')) throw new Error('a command line or environment value cannot contain a NUL byte');
  return `'${s.replace(/'/g, `'\\''`).replace(/\n/g, `'"$${NL}"'`)}'`;
}

/** The first of the candidates that is an executable file. */
function executable(candidates: readonly string[]): string | undefined {
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface Pending {
  readonly resolve: (pid: number) => void;
  readonly reject: (err: Error) => void;
  readonly onExit: (status: number, pid: number) => void;
}

/** A process the shell reported started. */
interface Started {
  readonly pid: number;
  readonly onExit: (status: number, pid: number) => void;
  /** Set once spawn() resolved: exits are reported only after that. */
  announced: boolean;
  /** An exit that came before spawn() resolved. */
  status: number | undefined;
}

export class Spawner {
  private readonly shell: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** By request id. */
  private readonly running = new Map<number, Started>();
  /** Requests that timed out: if the shell still starts them, they are killed at once. */
  private readonly abandoned = new Set<number>();
  private dead: string | undefined;

  /** A spawner, or undefined when this system lacks what it needs (setsid, env, /bin/sh). */
  static create(logger: Logger, onLost: (why: string) => void): Spawner | undefined {
    const setsid = executable(['/usr/bin/setsid', '/bin/setsid']);
    const env = executable(['/usr/bin/env', '/bin/env']);
    if (setsid === undefined || env === undefined || executable([SHELL]) === undefined) return undefined;
    return new Spawner(setsid, env, logger, onLost);
  }

  private constructor(
    private readonly setsid: string,
    private readonly env: string,
    private readonly logger: Logger,
    onLost: (why: string) => void,
  ) {
    this.shell = spawn(SHELL, ['-c', LOOP], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    this.shell.stdin!.on('error', () => undefined); // a dead shell is reported by 'exit'
    createInterface({ input: this.shell.stdout! }).on('line', (line) => this.receive(line));
    createInterface({ input: this.shell.stderr! }).on('line', (line) => logger.warn({ line }, 'the process spawner complained'));
    this.shell.on('exit', (code, signal) => {
      if (this.dead !== undefined) return;
      this.dead = `the process spawner (pid ${this.shell.pid}) exited (${signal ?? `code ${code}`})`;
      for (const p of this.pending.values()) p.reject(new Error(this.dead));
      this.pending.clear();
      this.running.clear();
      onLost(this.dead);
    });
  }

  /**
   * Starts a process; resolves with its pid once it runs as the leader of its own process group
   * (or has already exited). `onExit` gets its wait status, always after the promise resolved.
   */
  spawn(request: SpawnRequest, onExit: (status: number, pid: number) => void): Promise<number> {
    if (this.dead !== undefined) return Promise.reject(new Error(this.dead));
    const id = this.nextId++;
    const entries = Object.entries(request.env);
    for (const [k] of entries) if (k === '' || k.includes('=')) throw new Error(`environment variable name ${JSON.stringify(k)} cannot be passed to a process`);
    let env: string;
    let command: string;
    if (entries.every(([k]) => SHELL_NAME.test(k) && k !== NL)) {
      // The shell sets the variables itself (it runs with an empty environment, and what cd
      // added is taken out again): one exec fewer than env -i, a few ms per container.
      env = `unset PWD OLDPWD; ${entries.map(([k, v]) => `export ${k}=${shellWord(v)}; `).join('')}`;
      command = [shellWord(this.setsid), shellWord(request.program), ...request.args.map(shellWord)].join(' ');
    } else {
      // A name the shell cannot export (Kubernetes allows e.g. "my.var" or "-x"): env(1) sets
      // them, after "--" so that no name is taken for an option of env's.
      if (request.program.includes('=')) throw new Error(`the program path ${request.program} contains "=", which env(1) would take for a variable`);
      env = '';
      command = [shellWord(this.setsid), shellWord(this.env), '-i', '--', ...entries.map(([k, v]) => shellWord(`${k}=${v}`)), shellWord(request.program), ...request.args.map(shellWord)].join(' ');
    }
    const line = `{ ( cd -- ${shellWord(request.cwd)} || exit 126; ${env}exec ${command} ) </dev/null >>${shellWord(request.logPath)} 2>&1 & p=$!; echo "S ${id} $p"; wait "$p"; echo "E ${id} $?"; } 2>/dev/null &\n`;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        this.abandoned.add(id);
        reject(new Error(`the process spawner did not start ${request.program} within ${SPAWN_TIMEOUT_MS / 1000} s`));
      }, SPAWN_TIMEOUT_MS);
      const done = <T>(f: (x: T) => void) => (x: T): void => {
        clearTimeout(timer);
        f(x);
      };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject), onExit });
      this.shell.stdin!.write(line);
    });
  }

  /** Stops taking requests; processes already started keep running (their exits are not reported). */
  close(): void {
    this.dead ??= 'the process spawner was closed';
    for (const p of this.pending.values()) p.reject(new Error(this.dead));
    this.pending.clear();
    this.running.clear();
    this.shell.stdin!.end();
    this.shell.unref();
    for (const s of [this.shell.stdout, this.shell.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /**
   * Resolves once the new process leads its own process group (setsid ran), so that signals to
   * the group reach it, or once it is gone. The shell reports the pid right after forking;
   * setsid follows within a millisecond or so.
   */
  private async leading(pid: number, exited: () => boolean): Promise<void> {
    for (let waited = 0; waited < LEADER_WAIT_MS; waited++) {
      const stat = readProcStat(pid);
      if (stat === undefined || stat.pgrp === pid || stat.state === 'Z' || exited()) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    this.logger.warn({ pid }, 'a new container process did not start its own session within a second');
  }

  private receive(line: string): void {
    const started = /^S (\d+) (\d+)$/.exec(line);
    if (started !== null) {
      const id = Number(started[1]);
      const pid = Number(started[2]);
      if (this.abandoned.delete(id)) {
        // Its start() already failed: nobody tracks this process, so it must not run.
        this.logger.warn({ pid }, 'a container started after its start had timed out; killing it');
        for (const target of [-pid, pid]) {
          try {
            process.kill(target, 'SIGKILL');
          } catch {
            // not a group yet, or gone
          }
        }
        return;
      }
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      // Registered before anything else is read: the exit line may be next in the same chunk.
      const entry: Started = { pid, onExit: p.onExit, announced: false, status: undefined };
      this.running.set(id, entry);
      void this.leading(pid, () => entry.status !== undefined).then(() => {
        p.resolve(pid);
        entry.announced = true;
        // An exit that came first is reported once the caller has seen the start.
        if (entry.status !== undefined) setImmediate(() => entry.onExit(entry.status!, pid));
      });
      return;
    }
    const exited = /^E (\d+) (\d+)$/.exec(line);
    if (exited !== null) {
      const id = Number(exited[1]);
      const entry = this.running.get(id);
      if (entry === undefined) return;
      this.running.delete(id);
      entry.status = Number(exited[2]);
      if (entry.announced) entry.onExit(entry.status, entry.pid);
      return;
    }
    this.logger.warn({ line }, 'unexpected output from the process spawner');
  }
}

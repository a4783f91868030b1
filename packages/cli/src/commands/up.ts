import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirLockHolder, type DirLockHolder } from '@flotilla/wire';
import { apiUrl, clientUrl, loadClusterFile, type ClusterFile } from '../cluster-file.ts';
import { KubeClient } from '../kube-client.ts';
import { UsageError, parse } from '../args.ts';
import { collectStatus } from './status.ts';

export const UP_USAGE = `usage: flotilla up FILE [--fresh]

Starts every master of the cluster file as a child process, shows progress until they have
elected a leader, then starts the workers the file lists (agents), reports leadership changes,
and stops them all on Ctrl-C (the agents first: they stop their pods). Each master's log goes to
master.log in its data directory, each agent's to agent.log in its own. A second \`up\` reuses
the data (the cluster comes back with its objects); --fresh deletes every master's and
worker's data directory first. If a master or worker of the file already runs on its data
directory (another \`up\`, or one started by hand), \`up\` names it with its pid and exits without
starting, deleting or writing anything.`;

const BIN = fileURLToPath(new URL('../../bin/flotilla.mjs', import.meta.url));

interface Child {
  readonly spec: { readonly name: string };
  readonly proc: ChildProcess;
  lastError: string | undefined;
  exited: boolean;
}

/** Set once Ctrl-C (or every master exiting) began stopping everything. */
let stopping = false;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function up(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { fresh: { type: 'boolean' } }, UP_USAGE, true);
  if (positionals.length !== 1) throw new UsageError('up needs exactly one cluster file', UP_USAGE);
  const file = loadClusterFile(positionals[0]!);
  // Before anything is deleted, created or started: is any of it running already?
  refuseIfRunning(file, values.fresh === true);
  if (values.fresh === true) {
    for (const d of [...file.masters.map((m) => m.data), ...file.workers.map((w) => w.data)]) rmSync(d, { recursive: true, force: true });
    say('--fresh: deleted the data of every master and worker');
  }
  const starting = file.masters.filter((m) => !m.join);
  say(`starting ${starting.length} master${starting.length === 1 ? '' : 's'} of cluster ${file.cluster}: ${starting.map((m) => m.name).join(', ')}`);
  const children = starting.map((spec) => startChild(spec, 'master', spec.data, 'master.log', ['--config', file.path, '--name', spec.name]));
  const agents: Child[] = [];

  return new Promise<number>((resolve) => {
    let leader: string | null = null;
    let ready = false;
    const stopAll = async (code: number): Promise<void> => {
      if (stopping) return;
      stopping = true;
      clearInterval(poller);
      // Agents first, while the masters still answer: they stop their pods (within the pods'
      // grace periods, at most 10 s), then the masters.
      if (agents.length > 0) {
        say('stopping the workers and their pods…');
        await stopChildren(agents, 15_000);
      }
      say('stopping all masters…');
      await stopChildren(children, 5000);
      say('all masters stopped');
      resolve(code);
    };
    process.on('SIGINT', () => void stopAll(0));
    process.on('SIGTERM', () => void stopAll(0));
    for (const c of children) {
      c.proc.on('exit', (code, signal) => {
        c.exited = true;
        if (stopping) return;
        say(`${c.spec.name} exited (${signal ?? `code ${code}`})${c.lastError === undefined ? '' : `: ${c.lastError}`}`);
        if (children.every((x) => x.exited)) void stopAll(1);
      });
    }
    say('waiting for the masters to elect a leader…');
    const poller = setInterval(() => {
      void collectStatus(file, 400).then((masters) => {
        if (stopping) return;
        // The newest term any master reports, and who leads it by what the masters in that
        // term say (a leader busy for a moment still has followers that name it).
        const term = Math.max(0, ...masters.map((m) => m.term ?? 0));
        const named = masters.find((m) => m.term === term && (m.role === 'leader' || m.leader !== null));
        const now = named === undefined ? undefined : { name: named.role === 'leader' ? named.name : named.leader!, term };
        const anyAnswered = masters.some((m) => m.reachable);
        if (now !== undefined && now.name !== leader) {
          leader = now.name;
          if (!ready) {
            ready = true;
            say(`cluster ${file.cluster} is ready: ${now.name} leads (term ${now.term})`);
            say(`store clients: ${file.masters.map(clientUrl).join(' ')}`);
            const apis = file.masters.map((m) => apiUrl(file, m)).filter((u): u is string => u !== undefined);
            if (apis.length > 0) {
              say(`Kubernetes API: ${apis.join(' ')}`);
              say(`kubectl: npx flotilla kubeconfig --config ${file.path} > flotilla.kubeconfig && kubectl --kubeconfig flotilla.kubeconfig get nodes,pods -A`);
              // Every master serves the dashboard; a page follows the master it came from.
              say(`dashboard: ${apis.map((u) => `${u}/ui`).join(' ')}  (each master serves it; sign in with the admin token)`);
              const admin = file.tokens.find((t) => t.role === 'admin');
              if (admin !== undefined) say(`admin token: ${admin.token}`);
            }
            for (const w of file.workers) agents.push(startChild(w, 'agent', w.data, 'agent.log', ['--config', file.path, '--name', w.name]));
            if (agents.length === 0) say('Ctrl-C stops all masters');
            else void announceWorkers(file, () => stopping);
          } else {
            say(`leader is now ${now.name} (term ${now.term})`);
          }
        } else if (now === undefined && anyAnswered && leader !== null && ready) {
          leader = null;
          say('no leader at the moment; an election is under way');
        }
      });
    }, 250);
  });
}

/**
 * Throws (one sentence naming every running process and its pid) when a data directory this
 * `up` would use is locked by a live process: a master or agent of this cluster runs already.
 * Reads the lock files only (see @flotilla/wire's dir-lock). The masters and agents take the
 * locks themselves, first thing, so two `up`s racing past this check still cannot share a
 * directory: the later children stop at once with the same reason.
 */
function refuseIfRunning(file: ClusterFile, fresh: boolean): void {
  // `up` starts the founders and the workers; --fresh deletes every directory the file names.
  const members = [...file.masters.filter((m) => fresh || !m.join), ...file.workers];
  const held = members.flatMap((m) => {
    const holder = dirLockHolder(m.data);
    return holder === undefined ? [] : [{ name: m.name, data: m.data, holder }];
  });
  if (held.length === 0) return;
  const parents = new Set(held.map((h) => parentUp(h.holder)));
  const up = parents.size === 1 ? [...parents][0] : undefined;
  const list = held.map((h) => `${h.name} pid ${h.holder.pid}`).join(', ');
  const all = held.length === members.length;
  const others = members.filter((m) => !held.some((h) => h.name === m.name)).map((m) => m.name);
  const config = relative(process.cwd(), file.path) || file.path;
  throw new Error(
    `${all ? `cluster ${file.cluster} is already running` : `part of cluster ${file.cluster} is already running`}${up === undefined ? '' : ` (flotilla up pid ${up})`}: ${list}` +
      `${all ? '' : ` (not running: ${others.join(', ')})`}; nothing was started${fresh ? ', deleted' : ''} or changed. ` +
      `Stop ${all ? 'it' : 'them'} first (${up === undefined ? `kill -TERM ${held.map((h) => h.holder.pid).join(' ')}` : `Ctrl-C where it runs, or kill -INT ${up}`}); flotilla status --config ${config} shows the masters`,
  );
}

/** The pid of the `flotilla up` that runs this lock holder, if one does (Linux /proc). */
function parentUp(holder: DirLockHolder): number | undefined {
  let ppid = holder.ppid;
  try {
    const stat = readFileSync(`/proc/${holder.pid}/stat`, 'latin1');
    ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    // no /proc: the parent it had when it took the lock
  }
  try {
    const argv = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    const bin = argv.findIndex((a) => /flotilla(\.mjs)?$/.test(a));
    return bin >= 0 && argv[bin + 1] === 'up' ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until every worker's Node is Ready, then says how to use the cluster. */
async function announceWorkers(file: ClusterFile, stopped: () => boolean): Promise<void> {
  let api: KubeClient | undefined;
  const deadline = Date.now() + 60_000;
  while (!stopped()) {
    try {
      api ??= await KubeClient.connect(file);
      const nodes = (await api.ok('GET', '/api/v1/nodes')).items as { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[];
      const ready = new Set(nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata.name));
      if (file.workers.every((w) => ready.has(w.name))) break;
    } catch {
      // the API is still coming up
    }
    if (Date.now() > deadline) {
      say(`the workers have not all registered within a minute; see their agent.log files`);
      return;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  if (stopped()) return;
  const config = relative(process.cwd(), file.path) || file.path;
  say(`workers registered and Ready: ${file.workers.map((w) => w.name).join(', ')}`);
  say('try:');
  say(`  npx flotilla apply -f examples/ --config ${config}`);
  say(`  npx flotilla get pods -o wide --config ${config}`);
  say(`  curl http://${file.workers[0]!.address}:8080/    (the example's Service, through ${file.workers[0]!.name}'s proxy)`);
  say('Ctrl-C stops all workers and masters');
}

/** SIGTERM to each child that runs; SIGKILL to those still running after `ms`. */
async function stopChildren(list: readonly Child[], ms: number): Promise<void> {
  for (const c of list) if (!c.exited) c.proc.kill('SIGTERM');
  const deadline = Date.now() + ms;
  while (list.some((c) => !c.exited) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const c of list) {
    if (!c.exited) {
      say(`${c.spec.name} did not stop within ${ms / 1000} s; killing it`);
      c.proc.kill('SIGKILL');
    }
  }
}

/** Starts `flotilla <command> …` as a child; its JSON log goes to `logName` in `dir`. */
function startChild(spec: { readonly name: string }, command: 'master' | 'agent', dir: string, logName: string, args: readonly string[]): Child {
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, logName);
  const log = createWriteStream(logPath, { flags: 'a' });
  const proc = spawn(process.execPath, [BIN, command, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { spec, proc, lastError: undefined, exited: false };
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    log.write(`${line}\n`);
    // JSON lines are the log; anything else is the process telling the user why it stopped.
    if (!line.startsWith('{')) {
      child.lastError = line.replace(/^flotilla: /, '');
      say(`${spec.name}: ${child.lastError}`);
    }
  });
  proc.on('exit', (code, signal) => {
    child.exited = true;
    log.end();
    if (command === 'agent' && !stopping) say(`${spec.name} exited (${signal ?? `code ${code}`})${child.lastError === undefined ? '' : `: ${child.lastError}`}`);
  });
  say(`${spec.name} started (pid ${proc.pid}), log in ${logPath}`);
  return child;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { apiUrl, clientUrl, loadClusterFile, type ClusterFile, type MasterSpec } from '../cluster-file.ts';
import { UsageError, parse } from '../args.ts';
import { collectStatus } from './status.ts';

export const UP_USAGE = `usage: flotilla up FILE

Starts every master of the cluster file as a child process, shows progress until they have
elected a leader, reports leadership changes, and stops them all on Ctrl-C. Each master's log
goes to master.log in its data directory.`;

const BIN = fileURLToPath(new URL('../../bin/flotilla.mjs', import.meta.url));

interface Child {
  readonly spec: MasterSpec;
  readonly proc: ChildProcess;
  lastError: string | undefined;
  exited: boolean;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function up(args: readonly string[]): Promise<number> {
  const { positionals } = parse(args, {}, UP_USAGE, true);
  if (positionals.length !== 1) throw new UsageError('up needs exactly one cluster file', UP_USAGE);
  const file = loadClusterFile(positionals[0]!);
  const starting = file.masters.filter((m) => !m.join);
  say(`starting ${starting.length} master${starting.length === 1 ? '' : 's'} of cluster ${file.cluster}: ${starting.map((m) => m.name).join(', ')}`);
  const children = starting.map((spec) => startChild(file, spec));

  return new Promise<number>((resolve) => {
    let stopping = false;
    let leader: string | null = null;
    let ready = false;
    const stopAll = async (code: number): Promise<void> => {
      if (stopping) return;
      stopping = true;
      clearInterval(poller);
      say('stopping all masters…');
      for (const c of children) if (!c.exited) c.proc.kill('SIGTERM');
      const deadline = Date.now() + 5000;
      while (children.some((c) => !c.exited) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const c of children) {
        if (!c.exited) {
          say(`${c.spec.name} did not stop within 5 s; killing it`);
          c.proc.kill('SIGKILL');
        }
      }
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
            }
            say('Ctrl-C stops all masters');
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

function startChild(file: ClusterFile, spec: MasterSpec): Child {
  mkdirSync(spec.data, { recursive: true });
  const logPath = join(spec.data, 'master.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  const proc = spawn(process.execPath, [BIN, 'master', '--config', file.path, '--name', spec.name], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { spec, proc, lastError: undefined, exited: false };
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    log.write(`${line}\n`);
    // JSON lines are the log; anything else is the master telling the user why it stopped.
    if (!line.startsWith('{')) {
      child.lastError = line.replace(/^flotilla: /, '');
      say(`${spec.name}: ${child.lastError}`);
    }
  });
  proc.on('exit', () => log.end());
  say(`${spec.name} started (pid ${proc.pid}), log in ${logPath}`);
  return child;
}

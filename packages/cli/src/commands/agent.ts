import { mkdirSync } from 'node:fs';
import { Agent } from '@flotilla/agent';
import { createLogger, describeHolder, dirLockHolder } from '@flotilla/wire';
import { startWatchdog } from '../watchdog.ts';
import { readClusterCa } from '../ca.ts';
import { apiUrl, findWorker, loadClusterFile, type WorkerSpec } from '../cluster-file.ts';
import { UsageError, parse } from '../args.ts';

export const AGENT_USAGE = `usage: flotilla agent --config FILE --name NAME [--address IP] [--data DIR]

Runs one worker agent (kubelet, process runtime and service proxy) of the cluster described
by FILE: it joins with the cluster's joinToken, registers node NAME, and runs the pods the
scheduler binds to it, as processes on this machine. NAME is looked up under "workers:" in
FILE; --address and --data run a worker the file does not list (or override its values).
Logs are JSON lines on stderr. SIGTERM or Ctrl-C stops it and its pods' processes.`;

/** `flotilla agent`: runs until signalled; resolves with the exit code. */
export async function agent(args: readonly string[]): Promise<number> {
  const { values: opts } = parse(args, { config: { type: 'string' }, name: { type: 'string' }, address: { type: 'string' }, data: { type: 'string' } }, AGENT_USAGE);
  if (opts.config === undefined || opts.name === undefined) throw new UsageError('agent needs --config FILE and --name NAME', AGENT_USAGE);
  const file = loadClusterFile(opts.config);
  const listed = file.workers.some((w) => w.name === opts.name);
  if (!listed && (opts.address === undefined || opts.data === undefined)) findWorker(file, opts.name); // says what is missing
  const spec: WorkerSpec = listed
    ? { ...findWorker(file, opts.name), ...(opts.address === undefined ? {} : { address: opts.address }), ...(opts.data === undefined ? {} : { data: opts.data }) }
    : { name: opts.name, address: opts.address!, data: opts.data!, labels: {}, taints: [], reserve: {}, podPorts: { from: 20000, to: 29999 }, maxPods: 110 };
  if (file.joinToken === undefined) throw new Error(`cluster file ${file.path} has no joinToken, so no agent can join: add one (a string of at least 16 characters)`);
  const apiUrls = file.masters.flatMap((m) => apiUrl(file, m) ?? []);
  if (apiUrls.length === 0) throw new Error(`no master in ${file.path} serves the API: give the masters "api" addresses`);
  // At once, before waiting for the cluster's CA: another agent on this directory (Agent.start
  // takes the lock itself; this only says so before anything else happens).
  const holder = dirLockHolder(spec.data);
  if (holder !== undefined) {
    throw new Error(`agent ${spec.name}: the data directory ${spec.data} is in use by ${holder.by.startsWith('flotilla agent') ? 'another running agent' : 'another running process'}: ${describeHolder(holder)}`);
  }
  mkdirSync(spec.data, { recursive: true });
  const logger = createLogger(`${file.cluster}/${spec.name}`);
  startWatchdog(logger);
  const ca = file.insecureHttp ? undefined : await readClusterCa(file, `flotilla-agent-${spec.name}`, 30_000);
  const running = await Agent.start({
    name: spec.name,
    address: spec.address,
    apiUrls,
    joinToken: file.joinToken,
    ...(ca === undefined ? {} : { ca }),
    dataDir: spec.data,
    labels: spec.labels,
    taints: spec.taints,
    reserve: spec.reserve,
    maxPods: spec.maxPods,
    podPorts: spec.podPorts,
    logger,
  });
  logger.info({ node: spec.name, address: spec.address, data: spec.data }, `agent ${spec.name} started`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping the agent and its pods');
      running.stop().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err: (err as Error).message }, 'the agent did not stop cleanly');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

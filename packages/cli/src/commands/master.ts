import { statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { startApi, type ApiServer } from '@flotilla/api';
import { KvClient, KvServer, StoreNode, isKvError } from '@flotilla/store';
import { createLogger, isWireError } from '@flotilla/wire';
import { dashboardFiles } from '@flotilla/dashboard';
import { ControlPlane } from '../control-plane.ts';
import { collectStatus } from './status.ts';
import { startWatchdog } from '../watchdog.ts';
import { apiUrl, clientUrl, defaultQuota, findMaster, loadClusterFile, peerUrl, type Address, type ClusterFile } from '../cluster-file.ts';
import { UsageError, parse } from '../args.ts';

export const MASTER_USAGE = `usage: flotilla master --config FILE --name NAME [--join]

Starts one master of the cluster described by FILE: it joins the Raft group of masters,
keeps its state in its data directory, and serves clients. Logs are JSON lines on stderr.
Stop it with Ctrl-C (SIGINT) or SIGTERM. --join starts it empty, to be added to a running
cluster with \`flotilla member add\` (as does join: true in the cluster file).`;

/** `flotilla master`: runs until signalled; resolves with the exit code. */
export async function master(args: readonly string[]): Promise<number> {
  const { values: opts } = parse(args, { config: { type: 'string' }, name: { type: 'string' }, join: { type: 'boolean', default: false } }, MASTER_USAGE);
  if (opts.config === undefined || opts.name === undefined) throw new UsageError('master needs --config FILE and --name NAME', MASTER_USAGE);
  const file = loadClusterFile(opts.config);
  const me = findMaster(file, opts.name);
  const logger = createLogger(`${file.cluster}/${me.name}`);
  const watchdog = startWatchdog(logger);
  const rejoin = `flotilla member remove --config ${opts.config} --name ${me.name}; move ${me.data} away; flotilla master --config ${opts.config} --name ${me.name} --join; flotilla member add --config ${opts.config} --name ${me.name}`;
  let node: StoreNode;
  try {
    node = await StoreNode.open({
      id: me.name,
      cluster: file.cluster,
      members: file.masters.map((m) => ({ id: m.name, peerUrl: peerUrl(m) })),
      founders: file.masters.filter((m) => !m.join).map((m) => m.name),
      join: me.join || opts.join === true,
      peerListen: me.peerListen,
      ...(isLoopback(me.peerListen.host) && me.peerListen.host !== '127.0.0.1' ? { localAddress: me.peerListen.host } : {}),
      dataDir: me.data,
      secret: file.secret,
      logger,
      tickMs: file.raft.tickMs,
      electionTicks: file.raft.electionTicks,
      heartbeatTicks: file.raft.heartbeatTicks,
      historyRevisions: file.store.historyRevisions,
      quotaBytes: file.store.quotaBytes > 0 ? file.store.quotaBytes : defaultQuota(fileSystemSize(me.data)),
      rejoinHint: rejoin,
    });
  } catch (err) {
    throw startupError(me.name, 'peers', `${me.peerListen.host}:${me.peerListen.port}`, err, rejoin);
  }
  let server: KvServer;
  try {
    server = await KvServer.start(node, { host: me.client.host, port: me.client.port, secret: file.secret, logger });
  } catch (err) {
    await node.close();
    throw startupError(me.name, 'clients', `${me.client.host}:${me.client.port}`, err);
  }
  if (me.api !== undefined) {
    try {
      await assertFree(me.api);
    } catch (err) {
      await server.close();
      await node.close();
      throw startupError(me.name, 'the API', `${me.api.host}:${me.api.port}`, err);
    }
  }
  logger.info({ peers: `${me.peerListen.host}:${me.peerListen.port}`, clients: `${me.client.host}:${me.client.port}`, data: me.data }, `master ${me.name} started`);
  // Where pod-log requests go when the pod's agent is connected to another master.
  const peerApiUrls = file.masters.filter((m) => m.name !== me.name).flatMap((m) => apiUrl(file, m) ?? []);
  // The API needs the cluster (its CA lives in the store), so it comes up once there is a leader.
  let api: ApiServer | undefined;
  let controlPlane: ControlPlane | undefined;
  let stopping = false;
  const apiStarted =
    me.api === undefined
      ? Promise.resolve()
      : startApi({ node, cluster: file.cluster, host: me.api.host, port: me.api.port, dataDir: me.data, tokens: file.tokens, joinToken: file.joinToken, insecureHttp: file.insecureHttp, limits: file.apiServer, peers: () => peerApiUrls, ui: dashboardFiles(), raft: raftForDashboard(file), logger }).then(
          (a) => {
            api = a;
            logger.info({ url: apiUrl(file, me) }, `master ${me.name} serves the API`);
            if (stopping || !file.controlPlane) return;
            controlPlane = new ControlPlane(node, a, { logger, nodeGracePeriodMs: file.nodeLifecycle.gracePeriodSeconds * 1000, podEvictionMs: file.nodeLifecycle.evictionSeconds * 1000 });
            controlPlane.attach();
          },
          (err: unknown) => {
            process.stderr.write(`flotilla master ${me.name}: cannot serve the API: ${(err as Error).message}\n`);
            process.kill(process.pid, 'SIGTERM');
          },
        );

  return new Promise<number>((resolve) => {
    const stop = async (code: number, why: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      logger.info({ why }, `master ${me.name} stopping`);
      await Promise.race([apiStarted, new Promise((r) => setTimeout(r, 100))]);
      controlPlane?.close();
      await api?.close();
      await server.close();
      await node.close();
      watchdog.stop();
      resolve(code);
    };
    process.on('SIGINT', () => void stop(0, 'SIGINT'));
    process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
    node.on('fatal', (err) => {
      const damaged = isKvError(err, 'corrupt');
      process.stderr.write(`flotilla master ${me.name}: stopped: ${err.message}${damaged ? `\n  to bring it back as a new member: ${rejoin}` : ''}\n`);
      void stop(1, 'fatal');
    });
  });
}

/** Each master dials its peers from its own address when that is a loopback alias (tests). */
function isLoopback(host: string): boolean {
  return /^127\./.test(host);
}

/** The size of the file system holding `dir` (or its nearest existing parent). */
function fileSystemSize(dir: string): number {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = statfsSync(d);
      return s.blocks * s.bsize;
    } catch {
      if (dirname(d) === d) return 10 * 1024 ** 3;
    }
  }
}

function startupError(name: string, what: string, address: string, err: unknown, rejoin?: string): Error {
  if (isWireError(err)) return new Error(`master ${name} cannot serve ${what} on ${address}: ${err.message.replace(`${address} is `, 'it is ')}`);
  // A damaged directory: the exact commands that bring it back (a lost one's message has them).
  if (isKvError(err, 'corrupt') && rejoin !== undefined) return new Error(`master ${name}: ${err.message}\n  to bring it back as a new member: ${rejoin}`);
  if (isKvError(err)) return new Error(`master ${name}: ${err.message}`);
  if (err instanceof Error && err.constructor === Error) return new Error(`master ${name} cannot serve ${what} on ${address}: ${err.message}`);
  return err as Error;
}

/** Fails with the usual listen error if the address is taken (checked before announcing the start). */
function assertFree(a: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE' ? 'it is already in use by another process' : err.message)));
    probe.listen(a.port, a.host, () => probe.close(() => resolve()));
  });
}

/** What the dashboard shows of Raft (every master's status) and the transfer it offers. */
function raftForDashboard(file: ClusterFile): { status(): Promise<unknown>; transfer(to: string): Promise<void> } {
  return {
    status: () => collectStatus(file, 400),
    transfer: async (to) => {
      findMaster(file, to);
      const client = new KvClient({ endpoints: file.masters.map(clientUrl), secret: file.secret, name: 'flotilla-dashboard', timeoutMs: 10_000 });
      try {
        await client.admin({ op: 'transfer', to });
      } finally {
        client.close();
      }
    },
  };
}

// Bringing a master's API up: the cluster's CA (created once, by whichever master gets there
// first, and kept in the replicated store), this master's serving certificate (in its data
// directory), the node credentials, and the namespaces that exist from the start.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isKvError, type StoreNode, type TxnResponse } from '@flotilla/store';
import type { Logger } from '@flotilla/wire';
import { Authenticator, type StaticToken } from './auth.ts';
import { certCovers, createCa, createServingCert, type Pem } from './certs.ts';
import { ApiError } from './errors.ts';
import { SYSTEM_NAMESPACES } from './http/handlers.ts';
import { ApiServer, type ApiServerOptions } from './http/server.ts';
import { RESOURCES } from './resources.ts';
import { prepareCreate } from './strategy.ts';

export const CA_KEY = '/flotilla/ca';
export const NODE_TOKENS = '/flotilla/nodetokens/';

export interface ApiOptions {
  readonly node: StoreNode;
  readonly cluster: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly tokens: readonly StaticToken[];
  readonly joinToken: string | undefined;
  /** Plain HTTP instead of HTTPS (only when the cluster file asks for it). */
  readonly insecureHttp: boolean;
  readonly logger: Logger;
  /** In-flight limits (see ApiServerOptions); Kubernetes' defaults when absent. */
  readonly limits?: {
    readonly maxRequestsInFlight: number;
    readonly maxMutatingRequestsInFlight: number;
    readonly maxWatches?: number;
    readonly maxWatchesPerUser?: number;
    readonly requestTimeoutSeconds?: number;
    readonly maxConnections?: number;
  };
  /** The other masters' API base URLs, for pod-log requests whose agent is connected elsewhere. */
  readonly peers?: () => readonly string[];
  /** The dashboard's files, served at /ui (see ApiServerOptions.ui). */
  readonly ui?: ApiServerOptions['ui'];
  /** The masters' Raft status and leadership transfer, for the dashboard. */
  readonly raft?: ApiServerOptions['cluster'];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function retry<T>(what: string, logger: Logger, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      // A CORRUPT store keeps the master up (its status says why it does not serve), so wait.
      if (!(isKvError(err) && ['timeout', 'unavailable', 'not-leader', 'corrupt'].includes(err.code)) && !(err instanceof ApiError && err.reason === 'ServiceUnavailable')) throw err;
      if (attempt % 10 === 9) logger.warn({ err: (err as Error).message }, `still waiting for the cluster to ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The cluster CA: read it from the store, or create it there if no master has yet. */
export async function ensureCa(node: StoreNode, cluster: string, logger: Logger): Promise<Pem> {
  return retry('store the certificate authority', logger, async () => {
    const found = await node.range({ key: CA_KEY });
    if (found.kvs[0] !== undefined) return JSON.parse(dec.decode(found.kvs[0].value)) as Pem;
    const ca = await createCa(cluster);
    const res = (await node.write({
      type: 'txn',
      compare: [{ key: CA_KEY, target: 'version', result: 'equal', value: 0 }],
      success: [{ op: 'put', key: CA_KEY, value: enc.encode(JSON.stringify(ca)) }],
      failure: [{ op: 'range', key: CA_KEY }],
    })) as TxnResponse;
    if (res.succeeded) {
      logger.info({}, 'created the cluster certificate authority');
      return ca;
    }
    const other = res.responses[0];
    return JSON.parse(dec.decode((other as { kvs: { value: Uint8Array }[] }).kvs[0]!.value)) as Pem;
  });
}

/** This master's serving certificate, reused from its data directory while it still fits. */
async function servingCert(ca: Pem, options: ApiOptions): Promise<Pem> {
  const dir = join(options.dataDir, 'api');
  const ips = [...new Set([options.host === '0.0.0.0' ? '127.0.0.1' : options.host, '127.0.0.1'])].filter((h) => /^[\d.]+$/.test(h));
  const names = [...new Set(['localhost', hostname(), ...(/^[\d.]+$/.test(options.host) ? [] : [options.host])])];
  try {
    const pem = { cert: await readFile(join(dir, 'tls.crt'), 'utf8'), key: await readFile(join(dir, 'tls.key'), 'utf8') };
    if (certCovers(pem.cert, ca.cert, ips, names)) return pem;
  } catch {
    // none yet
  }
  const pem = await createServingCert(ca, options.node.id, ips, names);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tls.key'), pem.key, { mode: 0o600 });
  await writeFile(join(dir, 'tls.crt'), pem.cert);
  await writeFile(join(dir, 'ca.crt'), ca.cert);
  return pem;
}

/**
 * Keeps the authenticator's node credentials in step with the store: read them all, then
 * follow changes from that revision; if the watch ends, start over.
 */
async function followNodeTokens(node: StoreNode, auth: Authenticator, logger: Logger): Promise<void> {
  const current = await retry('read the node credentials', logger, () => node.range({ key: NODE_TOKENS, prefix: true }));
  auth.clearNodeTokens();
  for (const kv of current.kvs) auth.setNodeToken(kv.key.slice(NODE_TOKENS.length), dec.decode(kv.value));
  node.watch(
    { key: NODE_TOKENS, prefix: true, startRevision: current.revision + 1 },
    {
      deliver: (batch) => {
        for (const e of batch.events) auth.setNodeToken(e.kv.key.slice(NODE_TOKENS.length), e.type === 'put' ? dec.decode(e.kv.value) : undefined);
        return true;
      },
      end: (err) => {
        if (err === undefined || err.code === 'unavailable' || err.code === 'closed') return;
        logger.warn({ err: err.message }, 'node credential watch ended; reading them again');
        setTimeout(() => void followNodeTokens(node, auth, logger).catch(() => undefined), 1000);
      },
    },
  );
}

/** Creates the namespaces every cluster has, if missing. */
export async function ensureNamespaces(api: ApiServer, logger: Logger): Promise<void> {
  const ns = RESOURCES.find((r) => r.kind === 'Namespace')!;
  for (const name of SYSTEM_NAMESPACES) {
    await retry('create the system namespaces', logger, async () => {
      try {
        await api.objects.create(ns, prepareCreate(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
    });
  }
}

/** Starts the API server of a master. Resolves once it serves. */
export async function startApi(options: ApiOptions): Promise<ApiServer> {
  const { node, logger } = options;
  const auth = new Authenticator(options.tokens);
  let tls: Pem | undefined;
  let ca: Pem | undefined;
  if (!options.insecureHttp) {
    ca = await ensureCa(node, options.cluster, logger);
    tls = await servingCert(ca, options);
  }
  await followNodeTokens(node, auth, logger);
  const api = await ApiServer.start({
    node,
    host: options.host,
    port: options.port,
    ...(tls === undefined ? {} : { tls }),
    authenticator: auth,
    ...(options.joinToken === undefined ? {} : { joinToken: options.joinToken }),
    ...(options.limits === undefined ? {} : apiLimits(options.limits)),
    ...(options.peers === undefined ? {} : { peers: options.peers }),
    ...(options.ui === undefined ? {} : { ui: options.ui }),
    ...(options.raft === undefined ? {} : { cluster: options.raft }),
    ...(ca === undefined ? {} : { peerCa: ca.cert }),
    logger,
  });
  await ensureNamespaces(api, logger);
  return api;
}

/** The cluster file's apiServer section as the API server's options. */
function apiLimits(l: NonNullable<ApiOptions['limits']>): Partial<ApiServerOptions> {
  return {
    maxRequestsInFlight: l.maxRequestsInFlight,
    maxMutatingRequestsInFlight: l.maxMutatingRequestsInFlight,
    admission: { ...(l.maxWatches === undefined ? {} : { longRunning: l.maxWatches }), ...(l.maxWatchesPerUser === undefined ? {} : { longRunningPerUser: l.maxWatchesPerUser }) },
    ...(l.requestTimeoutSeconds === undefined ? {} : { requestTimeoutMs: l.requestTimeoutSeconds * 1000 }),
    ...(l.maxConnections === undefined ? {} : { maxConnections: l.maxConnections }),
  };
}

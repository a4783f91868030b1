// The worker agent: kubelet, process runtime and service proxy in one process. It joins the
// cluster with the join token (for a node credential), connects to one master at a time over
// WebSocket (AgentClient fails over between them), registers its Node, renews its Lease every
// second, runs the pods bound to it and proxies Service traffic on its node address.
//
// Masters coming and going do not touch running pods: requests wait for a connection, and the
// watches resume from the last resourceVersion seen (or list again) on whichever master answers.
// Stopping the agent (SIGTERM) stops its pods' processes; a SIGKILLed agent leaves them running,
// and its next start adopts them (or removes those whose pods are gone).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient, ApiError, Informer, joinCluster, timestamp, type Endpoints, type Event, type Node, type Pod, type Service, type Taint } from '@flotilla/api';
import { describeHolder, isDirLockedError, lockDir, silentLogger, type DirLock, type Logger } from '@flotilla/wire';
import { AgentApiClient } from './api-client.ts';
import { Kubelet } from './kubelet.ts';
import { ensureReady, LeaseKeeper, registerNode } from './node.ts';
import { DEFAULT_BACKOFF, type Backoff } from './pod-worker.ts';
import { DEFAULT_POD_PORTS, PortAllocator, type PortRange } from './ports.ts';
import { ServiceProxy } from './proxy.ts';
import { ProcessRuntime } from './runtime/process.ts';
import type { ContainerRuntime } from './runtime/types.ts';

/** How often the pods worked on are compared with the pods bound to the node. */
const RESYNC_MS = 10_000;

export interface AgentOptions {
  /** The node's name (a DNS-1123 subdomain). */
  readonly name: string;
  /** The node's address: its pods listen there and its proxy accepts there. */
  readonly address: string;
  /** The masters' API addresses. */
  readonly apiUrls: readonly string[];
  readonly joinToken: string;
  /** The cluster CA certificate (PEM), for https:// API addresses. */
  readonly ca?: string;
  /** Where the runtime keeps container records and logs. */
  readonly dataDir: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly taints?: readonly Taint[];
  readonly reserve?: { readonly cpu?: string; readonly memory?: string };
  readonly maxPods?: number;
  readonly podPorts?: PortRange;
  readonly backoff?: Partial<Backoff>;
  readonly leaseRenewMs?: number;
  readonly logger?: Logger;
  /** Another runtime (tests); default: the process runtime in dataDir. */
  readonly runtime?: ContainerRuntime;
}

export class Agent {
  private readonly informers: Informer<never>[] = [];
  private stopped = false;
  private resyncTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly options: AgentOptions,
    readonly runtime: ContainerRuntime,
    private readonly client: AgentClient,
    readonly api: AgentApiClient,
    readonly kubelet: Kubelet,
    readonly proxy: ServiceProxy,
    private readonly lease: LeaseKeeper,
    private readonly logger: Logger,
    private readonly lock: DirLock,
  ) {}

  static async start(options: AgentOptions): Promise<Agent> {
    const logger = options.logger ?? silentLogger;
    // The data directory is this agent's alone, locked before anything in it is read: a second
    // agent on it would adopt this one's containers, and stop them when it stops.
    const lock = lockAgentDir(options);
    if (lock.tookOver !== undefined) logger.info({ dir: options.dataDir, pid: lock.tookOver.pid }, 'took over the data directory of an agent that is gone');
    let agent: Agent | undefined;
    try {
      agent = await Agent.create(options, logger, lock);
    } finally {
      if (agent === undefined) lock.release();
    }
    return agent;
  }

  private static async create(options: AgentOptions, logger: Logger, lock: DirLock): Promise<Agent> {
    const runtime = options.runtime ?? new ProcessRuntime({ dataDir: join(options.dataDir, 'runtime'), logger, nodeName: options.name });
    // Failing before the agent exists: the runtime lets go of the directory before the lock goes.
    const abandon = async (err: unknown): Promise<never> => {
      await runtime.close().catch(() => undefined);
      throw err;
    };
    const recovered = await runtime.recover().catch(abandon);
    if (recovered.length > 0) logger.info({ containers: recovered.length, running: recovered.filter((c) => c.state === 'running').length }, 'found containers from an earlier run of this agent');
    const token = await joinAny(options, logger).catch(abandon);
    const client = new AgentClient({
      apiUrls: options.apiUrls,
      token,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      logger,
      logs: (request, sink) => runtime.logs(request.uid, request.container, { previous: request.previous, follow: request.follow, ...(request.tailLines === undefined ? {} : { tailLines: request.tailLines }), ...(request.limitBytes === undefined ? {} : { limitBytes: request.limitBytes }), ...(request.sinceSeconds === undefined ? {} : { sinceSeconds: request.sinceSeconds }) }, sink),
      onConnect: (url) => logger.info({ master: url }, 'connected to a master'),
      onDisconnect: (url, reason) => logger.info({ master: url, reason }, 'lost the connection to a master; reconnecting'),
    });
    const api = new AgentApiClient(client);
    const services = new Informer<Service>(api, 'services', { logger });
    const kubelet = new Kubelet({
      nodeName: options.name,
      address: options.address,
      api,
      runtime,
      ports: new PortAllocator(options.address, options.podPorts ?? DEFAULT_POD_PORTS),
      logger,
      services: (ns) => services.listIn(ns),
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      baseEnv: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    });
    const proxy = new ServiceProxy({ nodeName: options.name, address: options.address, logger, onError: (key, message) => void serviceWarning(api, options.name, key, message, logger) });
    const lease = new LeaseKeeper(api, options.name, logger, options.leaseRenewMs ?? 1000);
    const agent = new Agent(options, runtime, client, api, kubelet, proxy, lease, logger, lock);
    try {
      await agent.run(services);
    } catch (err) {
      await agent.stop(0);
      throw err;
    }
    return agent;
  }

  private async run(services: Informer<Service>): Promise<void> {
    const { name } = this.options;
    await retry(() => registerNode(this.api, { ...this.options, limits: this.runtime.limits }), 'register the node', this.logger, () => this.stopped);
    this.logger.info({ node: name, address: this.options.address, limits: this.runtime.limits.note }, 'node registered');
    this.lease.start();
    const node = new Informer<Node>(this.api, 'nodes', { list: { fieldSelector: `metadata.name=${name}` }, logger: this.logger }).on({
      add: (n) => void ensureReady(this.api, n).catch(() => undefined),
      update: (_, n) => void ensureReady(this.api, n).catch(() => undefined),
    });
    services.on({ add: (s) => this.proxy.setService(s), update: (_, s) => this.proxy.setService(s), delete: (s) => this.proxy.deleteService(s.metadata.namespace ?? '', s.metadata.name ?? '') });
    const endpoints = new Informer<Endpoints>(this.api, 'endpoints', { logger: this.logger }).on({
      add: (e) => this.proxy.setEndpoints(e),
      update: (_, e) => this.proxy.setEndpoints(e),
      delete: (e) => this.proxy.deleteEndpoints(e.metadata.namespace ?? '', e.metadata.name ?? ''),
    });
    const pods = new Informer<Pod>(this.api, 'pods', { list: { fieldSelector: `spec.nodeName=${name}` }, logger: this.logger }).on({
      add: (p) => this.kubelet.podChanged(p),
      update: (old, p) => this.kubelet.podUpdated(old, p),
      delete: (p) => this.kubelet.podDeleted(p),
    });
    for (const i of [node, services, endpoints, pods]) this.informers.push(i as unknown as Informer<never>);
    // Services first: a pod's environment names the Services of its namespace.
    for (const i of [node, services, endpoints, pods]) await retry(() => i.start(), `watch ${i.resource}`, this.logger, () => this.stopped);
    const removed = await this.kubelet.cleanOrphans(pods.list());
    if (removed > 0) this.logger.info({ containers: removed }, 'removed containers of pods that are gone');
    this.resyncTimer = setInterval(() => {
      if (pods.hasSynced) this.kubelet.resync(pods.list());
    }, RESYNC_MS);
  }

  /**
   * Stops the agent: its pods' processes (each within its grace period, at most `podGraceCapMs`),
   * the proxy, the lease and the connection. Pod objects are left as they are: the node goes
   * unreachable and the cluster replaces its pods elsewhere, as when a machine is shut down.
   */
  async stop(podGraceCapMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.lease.stop();
    for (const i of this.informers) i.stop();
    await this.kubelet.shutdown(podGraceCapMs);
    await this.proxy.close();
    this.client.close();
    try {
      await this.runtime.close();
    } finally {
      this.lock.release();
    }
  }
}

/** Creates and locks the agent's data directory, or says which agent holds it. */
function lockAgentDir(options: AgentOptions): DirLock {
  try {
    mkdirSync(options.dataDir, { recursive: true });
    return lockDir(options.dataDir, `flotilla agent ${options.name}`);
  } catch (err) {
    if (isDirLockedError(err) && err.holder !== undefined) {
      const what = err.holder.by.startsWith('flotilla agent') ? 'another running agent' : 'another running process';
      throw new Error(`the data directory ${options.dataDir} of node ${options.name} is in use by ${what}: ${describeHolder(err.holder)}`);
    }
    throw new Error(`cannot lock the data directory ${options.dataDir} of node ${options.name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Joins through the first master that answers; a refused join token is final. */
async function joinAny(options: AgentOptions, logger: Logger): Promise<string> {
  for (let round = 0; ; round++) {
    const errors: string[] = [];
    for (const url of options.apiUrls) {
      try {
        return await joinCluster(url, options.joinToken, options.name, options.ca);
      } catch (err) {
        const message = (err as Error).message;
        if (/HTTP (400|401|403)/.test(message)) throw new Error(`the cluster refused node ${options.name}: ${message}`);
        errors.push(message);
      }
    }
    if (round % 10 === 0) logger.warn({ errors }, 'no master accepted the join yet; trying again');
    await new Promise((r) => setTimeout(r, Math.min(2000, 200 * (round + 1))));
  }
}

/** Runs `f` until it succeeds (the masters may be unreachable for a while). */
async function retry<T>(f: () => Promise<T>, what: string, logger: Logger, stopped: () => boolean): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if (stopped()) throw err;
      if (err instanceof ApiError && (err.reason === 'Forbidden' || err.reason === 'Unauthorized' || err.reason === 'Invalid' || err.reason === 'BadRequest')) throw new Error(`could not ${what}: ${err.message}`);
      if (attempt % 10 === 0) logger.warn({ err: (err as Error).message }, `could not ${what} yet; trying again`);
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * (attempt + 1))));
    }
  }
}

/** A Warning event on a Service this node's proxy cannot serve (e.g. its port is taken). */
async function serviceWarning(api: AgentApiClient, node: string, key: string, message: string, logger: Logger): Promise<void> {
  const [namespace, name] = key.split('/') as [string, string];
  const at = timestamp();
  const event: Event = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${node}.${Date.now().toString(36)}`, namespace },
    involvedObject: { kind: 'Service', apiVersion: 'v1', namespace, name },
    reason: 'ProxyListenFailed',
    message,
    type: 'Warning',
    source: { component: 'flotilla-proxy', host: node },
    count: 1,
    firstTimestamp: at,
    lastTimestamp: at,
  };
  logger.warn({ service: key, message }, 'the proxy cannot serve a service');
  await api.create('events', event).catch(() => undefined);
}

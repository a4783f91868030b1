// The service proxy: kube-proxy's userspace mode, in process. For every Service and every TCP
// port in its spec, it listens on the node's address at the service port and forwards each
// accepted connection to a ready endpoint of the Service. Endpoints on this node come first (a
// request entering a node with a local replica is served there, saving a network hop); the
// others are used only when no local endpoint exists or every local one refused. Equals take
// connections in turn (round-robin). `internalTrafficPolicy: Local` allows local endpoints
// only, as in Kubernetes. A refused or timed-out dial moves on to the next candidate.
//
// State is level-triggered: setService / setEndpoints only record the object and resync the
// listeners, and each new connection reads the current endpoints when it is accepted, so a
// change applies to the next connection while the connections already proxied are left alone.
import { isIP, connect, createServer, type Server, type Socket } from 'node:net';
import type { Endpoints, Service, ServicePort } from '@flotilla/api';
import { silentLogger, type Logger } from '@flotilla/wire';

export interface ServiceProxyOptions {
  /** This node's name: endpoints whose nodeName equals it are local. */
  readonly nodeName: string;
  /** Where the proxy listens: the node's address (in 127.0.0.0/8, or the machine's own). */
  readonly address: string;
  readonly logger?: Logger;
  /** A listener that cannot be opened (port in use, no permission); the agent turns it into a Warning Event. */
  readonly onError?: (serviceKey: string, message: string) => void;
  /** How long a dial to one endpoint may take before the next is tried (default 1000 ms). */
  readonly dialTimeoutMs?: number;
  /** How often a listener that could not bind tries again (default 3000 ms). */
  readonly bindRetryMs?: number;
}

/** What a listener forwards to, as `describe()` reports it. */
export interface ProxyListenerInfo {
  readonly service: string;
  readonly port: number;
  readonly listening: boolean;
  /** ip:port of the ready endpoints on this node, in the order the next connection tries them. */
  readonly local: string[];
  /** ip:port of the ready endpoints elsewhere (empty under internalTrafficPolicy Local). */
  readonly remote: string[];
}

interface Target {
  readonly ip: string;
  readonly port: number;
}

/** One listening port, owned by the first Service that claimed it. */
interface Listener {
  readonly port: number;
  serviceKey: string;
  /** The owning service port's name ('' when unnamed): it picks the endpoint port. */
  portName: string;
  server: Server | undefined;
  listening: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  /** The last bind error reported, so a failing retry is reported once, not every few seconds. */
  bindError: string | undefined;
  /** Round-robin positions among local and among remote endpoints. */
  nextLocal: number;
  nextRemote: number;
  /** Why the last connection could not be served, so an outage is logged once, not per connection. */
  unserved: string | undefined;
}

const DEFAULT_DIAL_TIMEOUT_MS = 1000;
const DEFAULT_BIND_RETRY_MS = 3000;

export class ServiceProxy {
  private readonly nodeName: string;
  private readonly address: string;
  private readonly logger: Logger;
  private readonly onError: (serviceKey: string, message: string) => void;
  private readonly dialTimeoutMs: number;
  private readonly bindRetryMs: number;
  /** Insertion order decides which of two Services asking for one port gets it. */
  private readonly services = new Map<string, Service>();
  private readonly endpoints = new Map<string, Endpoints>();
  private readonly listeners = new Map<number, Listener>();
  /** Every client and upstream socket, so close() can end them. */
  private readonly sockets = new Set<Socket>();
  /** Service ports skipped at the last sync (UDP, invalid, taken by another service): each is reported once. */
  private skipped = new Set<string>();
  private closed = false;

  constructor(options: ServiceProxyOptions) {
    this.nodeName = options.nodeName;
    this.address = options.address;
    this.logger = options.logger ?? silentLogger;
    this.onError = options.onError ?? (() => {});
    this.dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.bindRetryMs = options.bindRetryMs ?? DEFAULT_BIND_RETRY_MS;
  }

  /** Adds or changes a Service (keyed by namespace/name). */
  setService(service: Service): void {
    this.services.set(keyOf(service.metadata.namespace, service.metadata.name), service);
    this.sync();
  }

  deleteService(namespace: string, name: string): void {
    this.services.delete(keyOf(namespace, name));
    this.sync();
  }

  setEndpoints(endpoints: Endpoints): void {
    this.endpoints.set(keyOf(endpoints.metadata.namespace, endpoints.metadata.name), endpoints);
  }

  deleteEndpoints(namespace: string, name: string): void {
    this.endpoints.delete(keyOf(namespace, name));
  }

  describe(): ProxyListenerInfo[] {
    return [...this.listeners.values()]
      .sort((a, b) => a.port - b.port)
      .map((l) => {
        const { local, remote } = this.targetsOf(l);
        const show = (t: Target): string => hostPort(t.ip, t.port);
        return { service: l.serviceKey, port: l.port, listening: l.listening, local: rotate(local, l.nextLocal).map(show), remote: rotate(remote, l.nextRemote).map(show) };
      });
  }

  /** Closes every listener and every proxied connection. */
  async close(): Promise<void> {
    this.closed = true;
    const servers: Server[] = [];
    for (const l of this.listeners.values()) {
      clearTimeout(l.retryTimer);
      if (l.server !== undefined) servers.push(l.server);
    }
    this.listeners.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  /**
   * Brings the listeners in line with the Services: one per TCP service port. A port keeps its
   * owner while the owner still wants it; otherwise the first Service asking for it takes it
   * over (without rebinding). Ports nobody wants any more are closed.
   */
  private sync(): void {
    if (this.closed) return;
    const skipped = new Set<string>();
    const skip = (id: string, report: () => void): void => {
      skipped.add(id);
      if (!this.skipped.has(id)) report();
    };
    const wanted = new Map<number, { serviceKey: string; portName: string }[]>();
    for (const [key, service] of this.services) {
      for (const sp of this.tcpPorts(key, service, skip)) {
        let claims = wanted.get(sp.port);
        if (claims === undefined) wanted.set(sp.port, (claims = []));
        // A service listing one port twice: the first entry counts (validation rejects it anyway).
        if (!claims.some((c) => c.serviceKey === key)) claims.push({ serviceKey: key, portName: sp.name ?? '' });
      }
    }
    for (const [port, l] of this.listeners) {
      if (wanted.has(port)) continue;
      this.listeners.delete(port);
      clearTimeout(l.retryTimer);
      // Stops accepting; the connections it already proxies go on until they end.
      l.server?.close();
    }
    for (const [port, claims] of wanted) {
      let l = this.listeners.get(port);
      const owner = claims.find((c) => c.serviceKey === l?.serviceKey) ?? claims[0]!;
      if (l === undefined) {
        l = { port, serviceKey: owner.serviceKey, portName: owner.portName, server: undefined, listening: false, retryTimer: undefined, bindError: undefined, nextLocal: 0, nextRemote: 0, unserved: undefined };
        this.listeners.set(port, l);
        this.bind(l);
      } else if (l.serviceKey !== owner.serviceKey) {
        this.logger.info({ port, from: l.serviceKey, to: owner.serviceKey }, 'proxy port handed to another service');
        l.serviceKey = owner.serviceKey;
        l.unserved = undefined;
      }
      l.portName = owner.portName;
      for (const c of claims) {
        if (c.serviceKey === owner.serviceKey) continue;
        skip(`${c.serviceKey}:${port}:conflict`, () =>
          this.onError(c.serviceKey, `cannot listen on ${hostPort(this.address, port)} for service ${c.serviceKey}: port already used by service ${owner.serviceKey} on this node; give one of them another port`),
        );
      }
    }
    this.skipped = skipped;
  }

  /** The service's TCP ports with a usable number; UDP and invalid ports are logged once and skipped. */
  private tcpPorts(key: string, service: Service, skip: (id: string, report: () => void) => void): ServicePort[] {
    const ports: ServicePort[] = [];
    const all: unknown = service.spec?.ports;
    for (const sp of Array.isArray(all) ? (all as ServicePort[]) : []) {
      if (sp === null || typeof sp !== 'object') continue;
      if ((sp.protocol ?? 'TCP') !== 'TCP') {
        skip(`${key}:${String(sp.port)}:udp`, () => this.logger.warn({ service: key, port: sp.port, protocol: sp.protocol }, 'the proxy forwards TCP only: this service port is not proxied'));
        continue;
      }
      if (!validPort(sp.port)) {
        skip(`${key}:${String(sp.port)}:invalid`, () => this.logger.warn({ service: key, port: sp.port }, 'service port is not a number in 1-65535: not proxied'));
        continue;
      }
      ports.push(sp);
    }
    return ports;
  }

  /** Opens the listener; a failure is reported and retried every bindRetryMs while the port is wanted. */
  private bind(l: Listener): void {
    const server = createServer({ allowHalfOpen: true }, (client) => this.accept(l, client));
    l.server = server;
    server.once('listening', () => {
      // Closed by a sync while it was binding: the port is no longer wanted.
      if (this.listeners.get(l.port) !== l || l.server !== server) {
        server.close();
        return;
      }
      l.listening = true;
      if (l.bindError !== undefined) this.logger.info({ service: l.serviceKey, address: this.address, port: l.port }, 'proxy listening after earlier failures');
      l.bindError = undefined;
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (l.listening) {
        this.logger.error({ service: l.serviceKey, port: l.port, err: err.message }, 'proxy listener failed');
        return;
      }
      server.close();
      if (this.listeners.get(l.port) !== l) return;
      const message = `cannot listen on ${hostPort(this.address, l.port)} for service ${l.serviceKey}: ${bindErrorText(err, l.port)}; retrying every ${this.bindRetryMs / 1000} s`;
      if (message !== l.bindError) {
        l.bindError = message;
        this.logger.warn({ service: l.serviceKey, port: l.port }, message);
        this.onError(l.serviceKey, message);
      }
      l.server = undefined;
      l.retryTimer = setTimeout(() => {
        l.retryTimer = undefined;
        if (this.listeners.get(l.port) === l) this.bind(l);
      }, this.bindRetryMs);
      l.retryTimer.unref();
    });
    server.listen({ host: this.address, port: l.port, exclusive: true });
  }

  /** The listener's ready endpoints, split into local and remote (remote empty under policy Local). */
  private targetsOf(l: Listener): { local: Target[]; remote: Target[] } {
    const local: Target[] = [];
    const remote: Target[] = [];
    const onlyLocal = this.services.get(l.serviceKey)?.spec?.internalTrafficPolicy === 'Local';
    const seen = new Set<string>();
    const subsets = this.endpoints.get(l.serviceKey)?.subsets;
    for (const subset of Array.isArray(subsets) ? subsets : []) {
      if (subset === null || typeof subset !== 'object') continue;
      const port = endpointPort(subset.ports, l.portName);
      if (port === undefined) continue;
      for (const a of Array.isArray(subset.addresses) ? subset.addresses : []) {
        if (a === null || typeof a !== 'object' || typeof a.ip !== 'string' || isIP(a.ip) === 0) continue;
        const id = hostPort(a.ip, port);
        if (seen.has(id)) continue;
        seen.add(id);
        if (a.nodeName === this.nodeName) local.push({ ip: a.ip, port });
        else if (!onlyLocal) remote.push({ ip: a.ip, port });
      }
    }
    return { local, remote };
  }

  /** Forwards one accepted connection: candidates in order until one accepts, then pipes both ways. */
  private accept(l: Listener, client: Socket): void {
    this.track(client);
    // A client that resets must not crash the agent; its 'close' ends the upstream side.
    client.on('error', () => {});
    const { local, remote } = this.targetsOf(l);
    const candidates = [...rotate(local, l.nextLocal++), ...rotate(remote, l.nextRemote++)];
    if (candidates.length === 0) {
      const policy = this.services.get(l.serviceKey)?.spec?.internalTrafficPolicy === 'Local' ? ' on this node (internalTrafficPolicy Local)' : '';
      this.unserved(l, `no ready endpoint${policy}: connections are closed`);
      client.destroy();
      return;
    }
    void this.connectFirst(l, client, candidates);
  }

  private async connectFirst(l: Listener, client: Socket, candidates: Target[]): Promise<void> {
    const failures: string[] = [];
    for (const target of candidates) {
      if (client.destroyed || this.closed) return;
      const upstream = await this.dial(target, client);
      if (upstream instanceof Error) {
        failures.push(`${hostPort(target.ip, target.port)}: ${upstream.message}`);
        continue;
      }
      if (client.destroyed || this.closed) {
        upstream.destroy();
        return;
      }
      l.unserved = undefined;
      splice(client, upstream);
      return;
    }
    if (!client.destroyed) this.unserved(l, `every endpoint failed (${failures.join('; ')}): connections are closed`);
    client.destroy();
  }

  /** A connected socket, or the error that stopped it (refused, timed out, client gone). */
  private dial(target: Target, client: Socket): Promise<Socket | Error> {
    return new Promise((resolve) => {
      const upstream = connect({ host: target.ip, port: target.port, allowHalfOpen: true });
      this.track(upstream);
      let settled = false;
      const done = (result: Socket | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.off('close', clientGone);
        upstream.off('connect', connected);
        upstream.off('error', failed);
        upstream.off('close', closed);
        if (result instanceof Error) upstream.destroy();
        resolve(result);
      };
      const connected = (): void => done(upstream);
      const failed = (err: NodeJS.ErrnoException): void => done(new Error(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message));
      const closed = (): void => done(new Error('closed'));
      const clientGone = (): void => done(new Error('client closed'));
      const timer = setTimeout(() => done(new Error(`i/o timeout after ${this.dialTimeoutMs} ms`)), this.dialTimeoutMs);
      upstream.on('error', () => {});
      upstream.once('connect', connected);
      upstream.once('error', failed);
      upstream.once('close', closed);
      client.once('close', clientGone);
    });
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private unserved(l: Listener, why: string): void {
    if (l.unserved === why) return;
    l.unserved = why;
    this.logger.info({ service: l.serviceKey, port: l.port }, why);
  }
}

/**
 * Pipes both ways with backpressure. A half-close (FIN) is passed on as a FIN, so a client
 * that ends its request still reads the whole response. When one side closes with an error
 * (reset) the other is destroyed; when one side is closed while the other still has data
 * coming, there is nowhere for it to go, so the other is destroyed too.
 */
function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const onClose = (other: Socket) => (hadError: boolean) => {
    if (hadError || !other.readableEnded) other.destroy();
  };
  a.once('close', onClose(b));
  b.once('close', onClose(a));
}

/** The endpoint port for a service port: the one with the same name, or the only one. */
function endpointPort(ports: unknown, name: string): number | undefined {
  if (!Array.isArray(ports)) return undefined;
  const tcp = ports.filter((p): p is { name?: unknown; port: number; protocol?: unknown } => p !== null && typeof p === 'object' && validPort((p as { port?: unknown }).port) && ((p as { protocol?: unknown }).protocol ?? 'TCP') === 'TCP');
  const named = tcp.find((p) => (typeof p.name === 'string' ? p.name : '') === name);
  if (named !== undefined) return named.port;
  return ports.length === 1 ? tcp[0]?.port : undefined;
}

function validPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** The list started at position `n` (mod its length): round-robin order. */
function rotate<T>(list: T[], n: number): T[] {
  if (list.length === 0) return list;
  const i = n % list.length;
  return [...list.slice(i), ...list.slice(0, i)];
}

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? 'default'}/${name ?? ''}`;
}

function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function bindErrorText(err: NodeJS.ErrnoException, port: number): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'address already in use';
    case 'EACCES':
      return port < 1024 ? 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine (is the node address configured?)';
    default:
      return err.message;
  }
}

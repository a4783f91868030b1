// The API server every master runs: HTTPS (or, only when the cluster file asks, HTTP), bearer
// token authentication, role authorization, and the Kubernetes REST verbs on the store.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { StoreNode } from '@flotilla/store';
import type { Logger } from '@flotilla/wire';
import { authorize, authorizeCreate, authorizePod, hashToken, newToken, type Authenticator, type User, type Verb } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { checkDns1123Subdomain } from '../labels.ts';
import { ObjectStore, type ListBound } from '../objects.ts';
import { apiVersionOf, type ResourceInfo } from '../resources.ts';
import type { KubeList, KubeObject, Status, Table } from '../types/meta.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, VERSION_INFO } from './discovery.ts';
import { Handlers, listOptions, type DeleteOptions, type PatchType } from './handlers.ts';
import { parseResourcePath, requestUrl, type ResourceRoute } from './route.ts';
import { openApiV3Index, openApiV3Document } from './openapi.ts';
import { roomIn, serveWatch } from './watch.ts';
import { Admission, DEFAULT_ADMISSION, type AdmissionLimits } from './admission.ts';
import { AgentEndpoint } from './agents.ts';
import { MAX_BODY_BYTES, closeInStages, readJson } from './body.ts';
import { logRequestOf, serveLog } from './logs.ts';
import type { Pod } from '../types/core.ts';

export { MAX_BODY_BYTES };


/** How long one collection of the cluster status is shared by everyone who asks. */
const CLUSTER_STATUS_REUSE_MS = 1000;

/** A static file of the dashboard. */
export interface UiFile {
  readonly type: string;
  readonly body: Buffer;
}

export interface ApiServerOptions {
  /** The dashboard's files by path under /ui ("index.html", "app.js", …), served without a token (the page asks for one). */
  readonly ui?: ReadonlyMap<string, UiFile>;
  /** Every master's Raft status, and a leadership transfer (GET/POST /flotilla/v1/cluster…). */
  readonly cluster?: { status(): Promise<unknown>; transfer(to: string): Promise<void> };
  readonly node: StoreNode;
  readonly host: string;
  readonly port: number;
  /** Serve HTTPS with this certificate; plain HTTP when absent. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly authenticator: Authenticator;
  /** The token agents present to join; undefined disables joining. */
  readonly joinToken?: string;
  readonly logger: Logger;
  /** Seconds between watch bookmarks (default 15). */
  readonly bookmarkSeconds?: number;
  /**
   * Requests served at once before more wait or get 429, as Kubernetes'
   * --max-requests-inflight (reads, default 400) and --max-mutating-requests-inflight
   * (changes, default 200); and the other bounds of admission.ts.
   */
  readonly maxRequestsInFlight?: number;
  readonly maxMutatingRequestsInFlight?: number;
  readonly admission?: Partial<AdmissionLimits>;
  /** A request that is not a watch or log stream is answered 504 after this long (default 60 s, as kube-apiserver's --request-timeout). */
  readonly requestTimeoutMs?: number;
  /** Connections (HTTP and agents' WebSockets) this master keeps open at once (default 4096). */
  readonly maxConnections?: number;
  /**
   * The other masters' API base URLs (not this one's). A pod-log request whose agent is
   * connected to another master is forwarded to these in turn.
   */
  readonly peers?: () => readonly string[];
  /** The cluster CA certificate, to verify the peers' https addresses. */
  readonly peerCa?: string;
}

/** One API request, whatever carried it (HTTP, or an agent's WebSocket). */
export interface ApiCall {
  readonly method: string;
  /** The path without the query, e.g. /api/v1/namespaces/default/pods. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly accept: string;
  readonly contentType: string | undefined;
  /** The request body, parsed; undefined if there is none and `optional`. Throws ApiError. */
  readonly body: (optional: boolean) => Promise<unknown>;
  /** The transport writes unpaged lists out a chunk at a time (ApiResult.list) rather than as one body. */
  readonly streamLists?: boolean;
  /**
   * A transport that sends each answer whole, in a frame of bounded size, refuses lists whose
   * items pass this many bytes (413, saying `why`) before reading the rest of them.
   */
  readonly maxAnswer?: ListBound;
}

export interface ApiResult {
  readonly code: number;
  readonly body: unknown;
  readonly contentType?: string;
  /** An unpaged list to stream (only when the call allowed it): `body` is undefined then. */
  readonly list?: StreamedList;
}

/** An unpaged list, read from the store a chunk at a time as the transport writes it. */
export interface StreamedList {
  readonly r: ResourceInfo;
  readonly asTable: boolean;
  readonly scan: AsyncGenerator<KubeObject[], KubeList['metadata'], void>;
  /** The list's revision, once the first chunk has been read. */
  readonly revision: () => number | undefined;
}

export class ApiServer {
  readonly objects: ObjectStore;
  /** Where agents connect (WebSocket on this server, at AGENT_PATH). */
  readonly agents: AgentEndpoint;
  private readonly handlers: Handlers;
  private readonly open = new Set<ServerResponse>();
  readonly admission: Admission;
  /** The last cluster status and when it was collected (0 while it is; one collection at a time, reused for a second). */
  private clusterStatus: { at: number; value: Promise<unknown> } | undefined;

  private constructor(
    private readonly http: Server,
    private readonly options: ApiServerOptions,
  ) {
    this.objects = new ObjectStore(options.node);
    this.admission = new Admission({
      ...DEFAULT_ADMISSION,
      ...(options.maxRequestsInFlight === undefined ? {} : { reads: options.maxRequestsInFlight }),
      ...(options.maxMutatingRequestsInFlight === undefined ? {} : { changes: options.maxMutatingRequestsInFlight }),
      ...options.admission,
    });
    this.handlers = new Handlers(this.objects);
    this.agents = new AgentEndpoint(http, this, options.authenticator, options.logger, options.bookmarkSeconds ?? 15);
  }

  static async start(options: ApiServerOptions): Promise<ApiServer> {
    let api: ApiServer | undefined;
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      void api!.handle(req, res);
    };
    const http = options.tls === undefined ? createHttpServer(onRequest) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest);
    http.headersTimeout = 20_000;
    // An idle kept-alive connection is the client's to close: Node's 5 s default closed them
    // while clients (client-go keeps idle connections 90 s, Node agents until their own timeout)
    // sent the next request on them, which then failed with ECONNRESET or "socket hang up"
    // (bench:api, two runs in three on a busy machine). Longer than any client's idle timeout,
    // so the client closes first; maxConnections bounds how many wait.
    http.keepAliveTimeout = 120_000;
    // The time to receive a whole request (headers and body), not to answer it: a watch's
    // response runs for long, but its request is received at once. A client that trickles a
    // body is cut off here.
    http.requestTimeout = 60_000;
    http.maxConnections = options.maxConnections ?? 4096;
    api = new ApiServer(http, options);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port, options.host, () => {
        http.removeAllListeners('error');
        http.on('error', (err) => options.logger.error({ err: err.message }, 'API server error'));
        resolve();
      });
    });
    return api;
  }

  /** The underlying server (the agent endpoint attaches to it). */
  get server(): Server {
    return this.http;
  }

  address(): { host: string; port: number } {
    const a = this.http.address() as { address: string; port: number };
    return { host: a.address, port: a.port };
  }

  /** Whether close() was called: in-process clients (LocalClient) are done then too. */
  get closed(): boolean {
    return this.isClosed;
  }

  private isClosed = false;

  async close(): Promise<void> {
    this.isClosed = true;
    await this.agents.close();
    for (const res of this.open) res.destroy();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    closeInStages(req);
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    try {
      await this.route(req, res);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('InternalError', `an internal error occurred: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) this.options.logger.error({ err: (err as Error).stack, url: req.url }, 'request failed unexpectedly');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const retry = e.details?.retryAfterSeconds;
      send(res, e.code, e.toStatus(), 'application/json', retry === undefined ? {} : { 'retry-after': String(retry) });
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url);
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && (path === '/healthz' || path === '/readyz' || path === '/livez')) return this.health(res, path, url.searchParams.has('verbose'));
    if (method === 'GET' && path === '/version') return send(res, 200, VERSION_INFO);
    if (path === '/flotilla/v1/join') return this.join(req, res);
    if (method === 'GET' && (path === '/ui' || path.startsWith('/ui/'))) return this.ui(res, path);
    const user = this.options.authenticator.authenticate(req.headers.authorization);
    if (path === '/flotilla/v1/cluster' || path === '/flotilla/v1/cluster/transfer') return this.clusterCall(req, res, user, method, path);
    const call: ApiCall = {
      method,
      path,
      query: url.searchParams,
      accept: req.headers.accept ?? '',
      contentType: req.headers['content-type'],
      body: (optional) => readJson(req, optional),
      streamLists: true,
    };
    if (method === 'GET') {
      const route = parseResourcePath(path);
      if (route?.subresource === 'log') return this.log(req, res, user, route, url.searchParams);
    }
    const watch = this.watchOf(user, call);
    if (watch !== undefined) {
      const { r, namespace } = watch;
      const done = this.admission.longRunningFor(user.name, 'watch');
      res.on('close', done);
      // The watch's start (an initial list, perhaps of everything) holds a read seat.
      const release = await this.admission.seat('reads', user.name);
      try {
        await serveWatch(req, res, this.objects, r, namespace, call.query, this.options.bookmarkSeconds ?? 15);
      } finally {
        release();
      }
      return;
    }
    const kind = method !== 'GET' && method !== 'HEAD' ? 'changes' : 'reads';
    const release = await this.admission.seat(kind, user.name);
    try {
      const result = await this.withTimeout(this.execute(user, call), `${method} ${path}`);
      if (result.list !== undefined) await sendList(res, result.list);
      else send(res, result.code, result.body, result.contentType);
    } finally {
      release();
    }
  }

  /**
   * `work`, or a 504 Timeout once the request timeout passes (the work goes on and keeps its
   * seat until it ends, as the store bounds it; only the client stops waiting).
   */
  withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
    const ms = this.options.requestTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ApiError('Timeout', `Timeout: ${what} did not complete within the request timeout of ${ms / 1000} s`, { retryAfterSeconds: 1 })), ms);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  /**
   * If `call` is a watch, checks that `user` may make it and says what it watches; watches are
   * streamed by the transport (chunked HTTP, or agent frames), everything else goes to execute().
   */
  watchOf(user: User, call: ApiCall): { r: ResourceInfo; namespace: string | undefined } | undefined {
    if (call.method !== 'GET') return undefined;
    const route = parseResourcePath(call.path);
    if (route === undefined) return undefined;
    if (!(route.watchPrefix || call.query.get('watch') === 'true' || call.query.get('watch') === '1')) return undefined;
    authorize(user, { verb: 'watch', resource: route.info.resource, subresource: route.subresource, namespace: route.namespace, name: route.name });
    return { r: route.info, namespace: route.namespace };
  }

  /** One API request that is not a watch, from any transport, as `user`. Throws ApiError. */
  async execute(user: User, call: ApiCall): Promise<ApiResult> {
    if (call.method === 'GET') {
      const doc = this.discovery(call.path);
      if (doc !== undefined) return { code: 200, body: doc };
    }
    const route = parseResourcePath(call.path);
    if (route === undefined) throw new ApiError('NotFound', `the server could not find the requested resource (${call.method} ${call.path})`);
    return this.resource(call, route, user);
  }

  private discovery(path: string): object | undefined {
    if (path === '/api') return apiVersions(`${this.options.host}:${this.options.port}`);
    if (path === '/apis') return apiGroupList();
    if (path === '/openapi/v3') return openApiV3Index();
    if (path.startsWith('/openapi/v3/')) {
      const doc = openApiV3Document(path.slice('/openapi/v3/'.length));
      if (doc !== undefined) return doc;
      throw new ApiError('NotFound', `no OpenAPI document for ${path}`);
    }
    const parts = path.split('/').filter((p) => p !== '');
    if (parts[0] === 'api' && parts.length === 2) return apiResourceList('', parts[1]!);
    if (parts[0] === 'apis' && parts.length === 2) return apiGroup(parts[1]!);
    if (parts[0] === 'apis' && parts.length === 3) return apiResourceList(parts[1]!, parts[2]!);
    return undefined;
  }

  private async resource(call: ApiCall, route: ResourceRoute, user: User): Promise<ApiResult> {
    const { info: r, namespace, name, subresource } = route;
    const q = call.query;
    const verb = verbOf(call.method, name, false);
    const decision = authorize(user, { verb, resource: r.resource, subresource, namespace, name });
    const dryRun = q.getAll('dryRun').includes('All');
    if (r.namespaced && name !== undefined && namespace === undefined) throw new ApiError('NotFound', `${r.resource} "${name}" not found: a namespace is needed`);
    const object = (code: number, body: KubeObject | KubeList | Status): ApiResult => respond(call.accept, code, body, r);
    switch (verb) {
      case 'watch':
        throw new ApiError('BadRequest', 'a watch must be opened with watchOf (internal error)');
      case 'list': {
        const options = listOptions(q, r);
        if (call.streamLists === true && options.limit === 0) {
          let revision: number | undefined;
          const scan = this.objects.scan(r, namespace, options, (rev) => (revision = rev));
          return { code: 200, body: undefined, list: { r, asTable: /as=Table/.test(call.accept), scan, revision: () => revision } };
        }
        return object(200, await this.objects.list(r, namespace, options, call.maxAnswer));
      }
      case 'get': {
        if (subresource === 'scale') return { code: 200, body: await this.handlers.getScale(r, namespace!, name!) };
        if (subresource === 'log') throw new ApiError('BadRequest', 'pod logs are streamed over HTTP only: GET this path from the API server');
        return object(200, await this.handlers.get(r, namespace, name!, q));
      }
      case 'create': {
        const body = await call.body(false);
        if (subresource === 'binding') return { code: 201, body: await this.handlers.bind(r, namespace!, name!, body) };
        if (name !== undefined) throw new ApiError('MethodNotAllowed', `POST is not allowed on ${r.resource}/${name}; POST to the collection to create`);
        if (decision === 'object') authorizeCreate(user, r.resource, body);
        return object(201, await this.handlers.create(r, namespace, body, dryRun));
      }
      case 'update': {
        const body = await call.body(false);
        if (subresource === 'scale') return { code: 200, body: await this.handlers.setScale(r, namespace!, name!, body, undefined) };
        if (decision === 'object') await this.checkPodOwner(r, namespace, name!, user);
        return object(200, await this.handlers.update(r, namespace, name!, subresource === 'status' ? 'status' : undefined, body, dryRun));
      }
      case 'patch': {
        const type = patchType(call.contentType);
        const body = await call.body(false);
        if (subresource === 'scale') return { code: 200, body: await this.handlers.setScale(r, namespace!, name!, body, type) };
        return object(200, await this.handlers.patch(r, namespace, name!, subresource === 'status' ? 'status' : undefined, type, body, dryRun, user));
      }
      case 'delete': {
        const options = deleteOptions(await call.body(true), q);
        return object(200, await this.handlers.delete(r, namespace, name!, options, user));
      }
      case 'deletecollection': {
        const options = deleteOptions(await call.body(true), q);
        listOptions(q, r);
        return { code: 200, body: await this.handlers.deleteCollection(r, namespace, q, options, user) };
      }
    }
  }

  private async checkPodOwner(r: ResourceInfo, namespace: string | undefined, name: string, user: User): Promise<void> {
    if (r.kind !== 'Pod') return;
    authorizePod(user, (await this.objects.get(r, namespace, name)) as never);
  }

  /** GET …/pods/NAME/log: streamed from the pod's agent, through whichever master it is connected to (logs.ts). */
  private async log(req: IncomingMessage, res: ServerResponse, user: User, route: ResourceRoute, query: URLSearchParams): Promise<void> {
    const { info: r, namespace, name } = route;
    authorize(user, { verb: 'get', resource: r.resource, subresource: 'log', namespace, name });
    if (namespace === undefined || name === undefined) throw new ApiError('NotFound', `pods "${name ?? ''}" not found: a namespace is needed`);
    const done = this.admission.longRunningFor(user.name, 'log stream');
    res.on('close', done);
    const pod = (await this.objects.get(r, namespace, name)) as Pod;
    const request = logRequestOf(pod, query);
    await serveLog(req, res, {
      pod,
      request,
      open: (sink) => this.agents.openLogs(pod.spec.nodeName!, request, sink),
      peers: this.options.peers?.() ?? [],
      ...(this.options.peerCa === undefined ? {} : { ca: this.options.peerCa }),
      logger: this.options.logger,
    });
  }

  /** GET /ui/…: the dashboard's static files (index.html for /ui). */
  private ui(res: ServerResponse, path: string): void {
    const name = path === '/ui' ? 'index.html' : path.slice('/ui/'.length);
    const file = this.options.ui?.get(name);
    if (file === undefined) throw new ApiError('NotFound', this.options.ui === undefined ? 'this master serves no dashboard' : `the dashboard has no file ${JSON.stringify(name)}`);
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.byteLength, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; frame-ancestors 'none'" }).end(file.body);
  }

  /** GET /flotilla/v1/cluster (any user): the masters' Raft status; POST …/transfer {to} (admin): hand leadership over. */
  private async clusterCall(req: IncomingMessage, res: ServerResponse, user: User, method: string, path: string): Promise<void> {
    const cluster = this.options.cluster;
    if (cluster === undefined) throw new ApiError('NotFound', 'this master does not report the cluster status');
    if (path === '/flotilla/v1/cluster') {
      if (method !== 'GET') throw new ApiError('MethodNotAllowed', 'GET the cluster status');
      // Collecting dials every master: one collection at a time, shared for a second by
      // everyone who asks, and it holds a read seat like any read.
      const release = await this.admission.seat('reads', user.name);
      try {
        const last = this.clusterStatus;
        if (last === undefined || (last.at > 0 && Date.now() - last.at > CLUSTER_STATUS_REUSE_MS)) {
          const current = { at: 0, value: cluster.status() };
          // `at` stays 0 while it is being collected: everyone who asks meanwhile shares it.
          current.value.then(
            () => (current.at = Date.now()),
            () => (current.at = 1),
          );
          this.clusterStatus = current;
        }
        return send(res, 200, { masters: await this.withTimeout(this.clusterStatus!.value, 'the cluster status') });
      } finally {
        release();
      }
    }
    if (method !== 'POST') throw new ApiError('MethodNotAllowed', 'POST {"to": "m2"} to transfer leadership');
    if (user.role !== 'admin') throw new ApiError('Forbidden', `User "${user.name}" cannot transfer leadership: only admins can`);
    const body = (await readJson(req)) as { to?: unknown };
    if (typeof body?.to !== 'string' || body.to === '') throw new ApiError('BadRequest', 'give the master to hand leadership to: {"to": "m2"}');
    try {
      await cluster.transfer(body.to);
    } catch (err) {
      throw new ApiError('BadRequest', `cannot transfer leadership to ${body.to}: ${(err as Error).message}`);
    }
    send(res, 200, { transferredTo: body.to });
  }

  /**
   * /livez: the process answers. /readyz and /healthz (as kube-apiserver's): also whether this
   * master's store serves, and its alarms; 503 with the reason when it does not serve. With
   * ?verbose, each check on its own line ([+] or [-]), as Kubernetes prints them.
   */
  private health(res: ServerResponse, path: string, verbose: boolean): void {
    const lines = ['[+]ping ok'];
    let failed = false;
    if (path !== '/livez') {
      const down = this.options.node.notServing();
      failed = down !== undefined;
      lines.push(down === undefined ? '[+]store ok' : `[-]store failed: ${down.message}`);
      // NOSPACE still serves reads and deletes: ready, but said.
      for (const a of this.options.node.alarms()) if (a.type === 'NOSPACE') lines.push(`[+]store alarm NOSPACE: ${a.message}; writes that add data are refused`);
    }
    const name = path.slice(1);
    const body = verbose || failed || lines.length > 2 ? `${lines.join('\n')}\n${name} check ${failed ? 'failed' : 'passed'}\n` : 'ok';
    res.writeHead(failed ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  }

  /** POST /flotilla/v1/join: an agent trades the cluster's join token for its node credential. */
  private async join(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', 'POST a {"nodeName": …} body to join');
    const expected = this.options.joinToken;
    const given = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (expected === undefined) throw new ApiError('Forbidden', 'this cluster accepts no agents: its cluster file has no joinToken');
    if (given !== expected) throw new ApiError('Unauthorized', 'Unauthorized: joining needs the cluster join token as a bearer token');
    const body = (await readJson(req)) as { nodeName?: unknown };
    const nodeName = body?.nodeName;
    if (typeof nodeName !== 'string' || checkDns1123Subdomain(nodeName) !== undefined) throw new ApiError('BadRequest', 'nodeName must be a valid node name (a lowercase RFC 1123 subdomain)');
    const token = newToken();
    await this.options.node.write({ type: 'put', key: `/flotilla/nodetokens/${nodeName}`, value: new TextEncoder().encode(hashToken(token)) });
    this.options.authenticator.setNodeToken(nodeName, hashToken(token));
    send(res, 200, { nodeName, token });
  }
}

/** An object or list, as a Table when the client asked for one (kubectl get). */
function respond(accept: string, code: number, body: KubeObject | KubeList | Status, r: ResourceInfo): ApiResult {
  if (/as=Table/.test(accept) && body.kind !== 'Status') return { code, body: toTable(r, body as KubeObject | KubeList), contentType: 'application/json;as=Table;v=v1;g=meta.k8s.io' };
  return { code, body };
}

function verbOf(method: string, name: string | undefined, watching: boolean): Verb {
  switch (method) {
    case 'GET':
      return name !== undefined ? (watching ? 'watch' : 'get') : watching ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return name === undefined ? 'deletecollection' : 'delete';
    default:
      throw new ApiError('MethodNotAllowed', `method ${method} is not supported`);
  }
}

function patchType(contentType: string | undefined): PatchType {
  const ct = (contentType ?? '').split(';')[0]!.trim();
  switch (ct) {
    case 'application/merge-patch+json':
      return 'merge';
    case 'application/strategic-merge-patch+json':
      return 'strategic';
    case 'application/json-patch+json':
      return 'json';
    case 'application/apply-patch+yaml':
      throw new ApiError('UnsupportedMediaType', 'server-side apply is not supported; use client-side apply (kubectl apply without --server-side)');
    default:
      throw new ApiError('UnsupportedMediaType', `the patch content type "${ct}" is not supported; use application/merge-patch+json, application/strategic-merge-patch+json or application/json-patch+json`);
  }
}

function deleteOptions(body: unknown, q: URLSearchParams): DeleteOptions {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const grace = q.get('gracePeriodSeconds') ?? b['gracePeriodSeconds'];
  const policy = q.get('propagationPolicy') ?? b['propagationPolicy'];
  if (policy !== undefined && policy !== null && policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') {
    throw new ApiError('BadRequest', `propagationPolicy must be Orphan, Background or Foreground, got ${JSON.stringify(policy)}`);
  }
  const g = grace === undefined || grace === null ? undefined : Number(grace);
  if (g !== undefined && (!Number.isInteger(g) || g < 0)) throw new ApiError('BadRequest', 'gracePeriodSeconds must be a non-negative integer');
  return {
    ...(g === undefined ? {} : { gracePeriodSeconds: g }),
    ...(policy === undefined || policy === null ? {} : { propagationPolicy: policy as DeleteOptions['propagationPolicy'] & string }),
    ...(b['orphanDependents'] === true || q.get('orphanDependents') === 'true' ? { orphanDependents: true } : {}),
    ...(typeof b['preconditions'] === 'object' && b['preconditions'] !== null ? { preconditions: b['preconditions'] as DeleteOptions['preconditions'] & object } : {}),
    ...(Array.isArray(b['dryRun']) || q.has('dryRun') ? { dryRun: [...((b['dryRun'] as string[]) ?? []), ...q.getAll('dryRun')] } : {}),
  };
}

export function send(res: ServerResponse, code: number, body: unknown, contentType = 'application/json', headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.end(text);
}

/** Bytes written to a response before the writer waits for the client to read them. */
const STREAM_HIGH_WATER = 1024 * 1024;

/**
 * Writes an unpaged list (or its Table) a chunk at a time: the master holds one chunk of
 * objects, yields its event loop between chunks and waits while the client has a megabyte
 * unread. A failure after the first byte can only cut the response (the client sees a
 * truncated body, never a wrong one).
 */
async function sendList(res: ServerResponse, list: StreamedList): Promise<void> {
  const { r, asTable, scan } = list;
  let first = await scan.next();
  const rv = String(list.revision() ?? (first.done === true ? first.value.resourceVersion : ''));
  const head = asTable
    ? { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: rv }, columnDefinitions: [...r.columns] }
    : { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: { resourceVersion: rv } };
  res.writeHead(200, { 'content-type': asTable ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json', 'cache-control': 'no-cache, private' });
  res.write(`${JSON.stringify(head).slice(0, -1)},"${asTable ? 'rows' : 'items'}":[`);
  let written = 0;
  const now = Date.now();
  while (first.done !== true) {
    const parts = first.value.map((o) => JSON.stringify(asTable ? { cells: r.row(o, now), object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } } : o));
    res.write(`${written > 0 ? ',' : ''}${parts.join(',')}`);
    written += parts.length;
    await roomIn(res, STREAM_HIGH_WATER);
    if (res.destroyed) {
      await scan.return({ resourceVersion: rv });
      return;
    }
    first = await scan.next();
  }
  res.end(']}');
}

function toTable(r: ResourceInfo, body: KubeObject | KubeList): Table {
  const now = Date.now();
  const items = 'items' in body ? body.items : [body];
  const meta = 'items' in body ? body.metadata : { resourceVersion: (body as KubeObject).metadata.resourceVersion ?? '' };
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: meta,
    columnDefinitions: [...r.columns],
    rows: items.map((o) => ({ cells: r.row(o, now), object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })),
  };
}


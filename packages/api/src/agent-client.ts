// The agent's side of the agent endpoint (see http/agents.ts): joining the cluster for a node
// credential, and one WebSocket to a master that carries the agent's API calls and watches,
// and the pod logs the master asks for. It dials the masters in turn and reconnects on its
// own; a request made while no master is connected waits for one until its deadline.
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { Dialer, silentLogger, type Frame, type Logger, type WireConnection } from '@flotilla/wire';
import type { LogRequest, LogSink } from './http/logs.ts';
import type { Status, WatchEventType } from './types/meta.ts';

/** Log data goes to the master in frames of at most this size. */
const MAX_LOG_FRAME_BYTES = 1024 * 1024;

export interface ApiResponse<T = unknown> {
  readonly code: number;
  /** The object, list or Status the API answered with. */
  readonly body: T;
}

/** What an API call through the agent connection failed with (a Status from the master). */
export class AgentApiError extends Error {
  override readonly name = 'AgentApiError';
  constructor(
    readonly code: number,
    readonly status: Status | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Trades the cluster's join token for this node's credential (POST /flotilla/v1/join on any
 * master's API). `ca` is the cluster CA certificate for https:// addresses.
 */
export async function joinCluster(apiUrl: string, joinToken: string, nodeName: string, ca?: string): Promise<string> {
  const url = new URL('/flotilla/v1/join', apiUrl);
  const body = JSON.stringify({ nodeName });
  const send = url.protocol === 'https:' ? request : httpRequest;
  const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(url, { method: 'POST', ...(ca === undefined ? {} : { ca }), headers: { authorization: `Bearer ${joinToken}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${apiUrl} did not answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
  let parsed: { token?: string; message?: string } = {};
  try {
    parsed = JSON.parse(answer.text) as typeof parsed;
  } catch {
    // not JSON: reported below
  }
  if (answer.status !== 200 || typeof parsed.token !== 'string') throw new Error(`joining through ${apiUrl} failed (HTTP ${answer.status}): ${parsed.message ?? answer.text.slice(0, 200)}`);
  return parsed.token;
}

export interface AgentClientOptions {
  /** The masters' API addresses (https://host:port); the client uses one at a time. */
  readonly apiUrls: readonly string[];
  /** This node's credential (from joinCluster). */
  readonly token: string;
  /** The cluster CA certificate, for https:// addresses. */
  readonly ca?: string;
  readonly logger?: Logger;
  /** Called when a connection to a master opens (the agent resyncs its watches then). */
  readonly onConnect?: (apiUrl: string) => void;
  readonly onDisconnect?: (apiUrl: string, reason: string) => void;
  /**
   * Serves the master's requests for a container's log: stream it into `sink` and return
   * cancel(), which is called when the reader goes away or the connection drops. Without it
   * the agent answers every log request with an error.
   */
  readonly logs?: (request: LogRequest, sink: LogSink) => () => void;
}

export interface WatchHandler {
  readonly event: (type: WatchEventType, object: unknown) => void;
  /** The watch ended: the master went away, or asked the agent to watch again. */
  readonly end: () => void;
}

interface Pending {
  readonly resolve: (r: ApiResponse) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class AgentClient {
  private dialer: Dialer | undefined;
  private current = -1;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<number, WatchHandler>();
  /** Log streams served, by the master's id, each with the connection it goes out on. */
  private readonly logStreams = new Map<number, { readonly conn: WireConnection; readonly cancel: () => void }>();
  private readonly waiting: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: AgentClientOptions) {
    if (options.apiUrls.length === 0) throw new Error('an agent needs at least one master API address');
    this.next();
  }

  /** The API address of the master this client is connected to, if any. */
  get connectedTo(): string | undefined {
    return this.dialer?.connection === undefined ? undefined : this.options.apiUrls[this.current];
  }

  /** One API call as this node; resolves with any HTTP-like answer (check `code`). */
  async request<T = unknown>(method: string, path: string, options: { query?: Record<string, string>; body?: unknown; contentType?: string; timeoutMs?: number } = {}): Promise<ApiResponse<T>> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    const conn = await this.connection(deadline);
    const id = this.nextId++;
    return new Promise<ApiResponse<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 10_000} ms`));
      }, Math.max(1, deadline - Date.now()));
      this.pending.set(id, { resolve: resolve as (r: ApiResponse) => void, reject, timer });
      const sent = conn.send({ t: 'req', id, method, path, ...(options.query === undefined ? {} : { query: options.query }), ...(options.body === undefined ? {} : { body: options.body as Frame }), ...(options.contentType === undefined ? {} : { contentType: options.contentType }) });
      if (!sent) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`${method} ${path}: the connection to the master is not accepting requests`));
      }
    });
  }

  /** Like request(), but a non-2xx answer throws AgentApiError with the master's Status. */
  async call<T = unknown>(method: string, path: string, options: { query?: Record<string, string>; body?: unknown; contentType?: string; timeoutMs?: number } = {}): Promise<T> {
    const r = await this.request<T>(method, path, options);
    if (r.code >= 200 && r.code < 300) return r.body;
    const status = r.body as unknown as Status | undefined;
    throw new AgentApiError(r.code, status, `${method} ${path}: ${status?.message ?? `HTTP ${r.code}`}`);
  }

  /**
   * Watches `path` (query as for HTTP, e.g. {resourceVersion, labelSelector}). Ends (handler.end)
   * when the master goes away or ends it; the caller watches again from the last
   * resourceVersion it saw. Returns cancel().
   */
  async watch(path: string, query: Record<string, string>, handler: WatchHandler, timeoutMs = 10_000): Promise<() => void> {
    const conn = await this.connection(Date.now() + timeoutMs);
    const id = this.nextId++;
    this.watches.set(id, handler);
    if (!conn.send({ t: 'watch', id, path, query: { ...query, watch: 'true' } })) {
      this.watches.delete(id);
      throw new Error(`watch ${path}: the connection to the master is not accepting requests`);
    }
    return () => {
      if (!this.watches.delete(id)) return;
      conn.send({ t: 'cancel', id });
    };
  }

  close(): void {
    this.closed = true;
    this.dialer?.stop();
    this.failAll('the agent client was closed');
  }

  private next(): void {
    if (this.closed) return;
    this.dialer?.stop();
    this.current = (this.current + 1) % this.options.apiUrls.length;
    const url = this.options.apiUrls[this.current]!;
    const wsUrl = `${url.replace(/^http/, 'ws').replace(/\/+$/, '')}/flotilla/v1/agent`;
    let failures = 0;
    const dialer = new Dialer({
      url: wsUrl,
      remote: url,
      credential: () => `Bearer ${this.options.token}`,
      credentialHeader: 'authorization',
      ...(this.options.ca === undefined ? {} : { tls: { ca: this.options.ca } }),
      backoff: { initialMs: 50, maxMs: 500 },
      connectTimeoutMs: 2000,
      maxFrameBytes: 16 * 1024 * 1024,
      maxBufferedBytes: 32 * 1024 * 1024,
      heartbeatMs: 1000,
      logger: this.options.logger ?? silentLogger,
      onConnect: (conn) => {
        failures = 0;
        conn.on('frame', (f) => this.receive(f, conn));
        conn.on('close', () => this.cancelLogs(conn));
        for (const wake of this.waiting.splice(0)) wake();
        this.options.onConnect?.(url);
      },
      onDisconnect: (reason) => {
        if (this.dialer !== dialer) return;
        this.failAll(`the connection to ${url} was lost (${reason})`);
        this.options.onDisconnect?.(url, reason);
        // Two failed attempts in a row: try the next master.
        if (++failures >= 2 && this.options.apiUrls.length > 1) this.next();
      },
    });
    this.dialer = dialer;
    dialer.start();
  }

  private async connection(deadline: number): Promise<WireConnection> {
    for (;;) {
      if (this.closed) throw new Error('the agent client is closed');
      const conn = this.dialer?.connection;
      if (conn !== undefined) return conn;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no master could be reached (tried ${this.options.apiUrls.join(', ')})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private receive(f: Frame, conn: WireConnection): void {
    const id = f['id'] as number;
    switch (f['t']) {
      case 'logs':
        this.serveLogs(id, f, conn);
        return;
      case 'logCancel': {
        const stream = this.logStreams.get(id);
        if (stream?.conn !== conn) return;
        this.logStreams.delete(id);
        stream.cancel();
        return;
      }
      case 'res': {
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve({ code: f['code'] as number, body: f['body'] });
        return;
      }
      case 'event':
        this.watches.get(id)?.event(f['type'] as WatchEventType, f['object']);
        return;
      case 'watchEnd': {
        const h = this.watches.get(id);
        this.watches.delete(id);
        h?.end();
        return;
      }
    }
  }

  /** Streams one log the master asked for, in logData frames and a final logEnd. */
  private serveLogs(id: number, f: Frame, conn: WireConnection): void {
    if (typeof id !== 'number' || this.logStreams.get(id)?.conn === conn) return;
    const request = logRequestOf(f);
    if (typeof request === 'string') {
      conn.send({ t: 'logEnd', id, error: { code: 400, message: request } });
      return;
    }
    if (this.options.logs === undefined) {
      conn.send({ t: 'logEnd', id, error: { code: 500, message: 'this agent does not serve logs' } });
      return;
    }
    let ended = false;
    let stop: (() => void) | undefined;
    let halted = false;
    /** Stops the runtime's stream, now or as soon as logs() has returned its cancel. */
    const halt = (): void => {
      halted = true;
      stop?.();
    };
    const forget = (): void => {
      if (this.logStreams.get(id)?.conn === conn) this.logStreams.delete(id);
    };
    const end = (error?: { readonly code: number; readonly message: string }): void => {
      if (ended) return;
      ended = true;
      forget();
      conn.send({ t: 'logEnd', id, ...(error === undefined ? {} : { error: { code: error.code, message: error.message } }) });
    };
    const sink: LogSink = {
      data: (chunk) => {
        for (let at = 0; !ended && at < chunk.byteLength; at += MAX_LOG_FRAME_BYTES) {
          if (conn.send({ t: 'logData', id, data: chunk.subarray(at, at + MAX_LOG_FRAME_BYTES) })) continue;
          // The master is not reading: stop reading the log rather than pile it up here.
          end({ code: 503, message: 'the agent could not send the log as fast as it was read (its connection to the master is congested); read it again, perhaps with tailLines or limitBytes' });
          halt();
        }
      },
      end,
    };
    // Cancelled by the master, or its connection dropped: nothing more is sent.
    this.logStreams.set(id, {
      conn,
      cancel: () => {
        ended = true;
        forget();
        halt();
      },
    });
    try {
      stop = this.options.logs(request, sink);
    } catch (err) {
      end({ code: 500, message: `the agent failed to read the log: ${(err as Error).message}` });
      return;
    }
    if (halted) stop();
  }

  /** The connection is gone: so is every log stream it carried. */
  private cancelLogs(conn: WireConnection): void {
    for (const [id, stream] of this.logStreams) {
      if (stream.conn !== conn) continue;
      this.logStreams.delete(id);
      stream.cancel();
    }
  }

  private failAll(why: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(why));
      this.pending.delete(id);
    }
    for (const [id, h] of this.watches) {
      this.watches.delete(id);
      h.end();
    }
  }
}

/** The LogRequest in a 'logs' frame, or what is wrong with the frame. */
function logRequestOf(f: Frame): LogRequest | string {
  const text = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
  const count = (k: string): number | undefined | null => (f[k] === undefined || f[k] === null ? undefined : typeof f[k] === 'number' && Number.isSafeInteger(f[k]) && (f[k] as number) >= 0 ? (f[k] as number) : null);
  const namespace = text('namespace');
  const pod = text('pod');
  const uid = text('uid');
  const container = text('container');
  if (namespace === undefined || pod === undefined || uid === undefined || container === undefined) return 'a logs frame needs namespace, pod, uid and container as strings';
  if (typeof f['follow'] !== 'boolean' || typeof f['previous'] !== 'boolean') return 'a logs frame needs follow and previous as booleans';
  const tailLines = count('tailLines');
  const limitBytes = count('limitBytes');
  const sinceSeconds = count('sinceSeconds');
  if (tailLines === null || limitBytes === null || sinceSeconds === null) return 'tailLines, limitBytes and sinceSeconds must be non-negative integers';
  return {
    namespace,
    pod,
    uid,
    container,
    follow: f['follow'],
    previous: f['previous'],
    ...(tailLines === undefined ? {} : { tailLines }),
    ...(limitBytes === undefined ? {} : { limitBytes }),
    ...(sinceSeconds === undefined ? {} : { sinceSeconds }),
  };
}

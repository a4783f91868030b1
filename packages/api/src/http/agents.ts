// The agent endpoint: worker agents connect to any master by WebSocket (packages/wire, msgpack
// frames) at /flotilla/v1/agent with their node credential as a bearer token, and make their
// API calls over that one connection, with the rights of the node role:
//
//   agent → master  {t: 'req', id, method, path, query?, body?, contentType?}
//                   {t: 'watch', id, path, query?}        {t: 'cancel', id}
//   master → agent  {t: 'res', id, code, body}            (body: the object, list or Status)
//                   {t: 'event', id, type, object}        (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
//                   {t: 'watchEnd', id}                   (watch again from the last resourceVersion)
//
// Requests go through the same path as HTTP ones (ApiServer.execute / runWatch), so an agent
// can do exactly what its node credential allows and nothing more.
//
// Pod logs go the other way: the master asks, the agent streams (ids are the master's own,
// a space apart from the agent's request ids):
//
//   master → agent  {t: 'logs', id, namespace, pod, uid, container, follow, previous,
//                    tailLines?, limitBytes?, sinceSeconds?}
//                   {t: 'logCancel', id}                  (the reader went away)
//   agent → master  {t: 'logData', id, data: Uint8Array}  … then
//                   {t: 'logEnd', id, error?: {code, message}}
//
// Frames for a stream the master no longer has (cancelled meanwhile) are ignored; malformed
// ones close the connection. Streams still open when the connection closes end with a 503.
import type { IncomingMessage, Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { CLOSE, InFlightLimit, WireServer, isWireError, type CredentialCheck, type Frame, type Logger, type WireConnection } from '@flotilla/wire';
import type { Authenticator, User } from '../auth.ts';
import { ApiError } from '../errors.ts';
import type { ObjectStore } from '../objects.ts';
import type { ApiCall, ApiResult } from './server.ts';
import { checkBody, MAX_BODY_VALUES } from './body.ts';
import type { LogRequest, LogSink } from './logs.ts';
import { runWatch } from './watch.ts';
import type { Admission } from './admission.ts';

export const AGENT_PATH = '/flotilla/v1/agent';
/** The largest frame either side sends (an answer over it is refused, not sent). */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** An agent's frame holds at most one body (MAX_BODY_VALUES) and the frame around it. */
const MAX_FRAME_VALUES = 2 * MAX_BODY_VALUES;
/** A list whose items pass 3/4 of a frame is refused as they do, not after it was all encoded. */
const LIST_BOUND = { bytes: (MAX_FRAME_BYTES / 4) * 3, why: `the answer is larger than this connection's ${MAX_FRAME_BYTES / 1024 / 1024} MiB frame limit (its items pass ${(MAX_FRAME_BYTES / 4) * 3 / 1024 / 1024} MiB); list with limit and continue, or narrow the request` };
/** Requests one agent may have in progress before the master stops reading its frames. */
const MAX_IN_FLIGHT = 256;
/** Watches one agent may hold open. */
const MAX_WATCHES = 64;
/** Log streams the master may have open on one agent connection. */
const MAX_LOG_STREAMS = 64;
/** The longest error message from an agent passed on to a log reader. */
const MAX_LOG_ERROR_CHARS = 1024;

/** What the endpoint needs from the API server. */
export interface AgentApi {
  readonly objects: ObjectStore;
  watchOf(user: User, call: ApiCall): { r: import('../resources.ts').ResourceInfo; namespace: string | undefined } | undefined;
  execute(user: User, call: ApiCall): Promise<ApiResult>;
  readonly admission: Admission;
  withTimeout<T>(work: Promise<T>, what: string): Promise<T>;
}

export class AgentEndpoint {
  private readonly wire: WireServer;
  /** Connected agents by node name (the newest connection of a node is last). */
  private readonly byNode = new Map<string, WireConnection[]>();
  /** The log streams open on each connection, by the master's stream id. */
  private readonly logStreams = new Map<WireConnection, Map<number, LogSink>>();
  private nextLogId = 1;

  constructor(
    http: Server | HttpsServer,
    private readonly api: AgentApi,
    private readonly authenticator: Authenticator,
    private readonly logger: Logger,
    private readonly bookmarkSeconds: number,
  ) {
    this.wire = WireServer.attach(
      http,
      { path: AGENT_PATH, authenticate: (req) => this.authenticate(req), maxFrameBytes: MAX_FRAME_BYTES, maxFrameValues: MAX_FRAME_VALUES, maxBufferedBytes: 32 * 1024 * 1024, heartbeatMs: 1000, logger },
      (conn) => this.serve(conn),
    );
  }

  /** Nodes with an agent connected to this master. */
  nodes(): string[] {
    return [...this.byNode.keys()];
  }

  /** The newest connection of a node's agent to this master, if any. */
  connection(node: string): WireConnection | undefined {
    const list = this.byNode.get(node);
    return list?.[list.length - 1];
  }

  /**
   * Asks the agent of `node` for a container's log, to be streamed into `sink`. Returns
   * cancel(), or undefined if that agent is not connected to this master. Throws ApiError
   * (429) when the agent's connection already carries MAX_LOG_STREAMS streams.
   */
  openLogs(node: string, request: LogRequest, sink: LogSink): (() => void) | undefined {
    const conn = this.connection(node);
    const streams = conn === undefined ? undefined : this.logStreams.get(conn);
    if (conn === undefined || streams === undefined) return undefined;
    if (streams.size >= MAX_LOG_STREAMS) throw new ApiError('TooManyRequests', `node "${node}" already streams ${MAX_LOG_STREAMS} logs through this master; close one, or retry in a second`, { retryAfterSeconds: 1 });
    const id = this.nextLogId++;
    if (!conn.send({ t: 'logs', id, ...request })) throw new ApiError('ServiceUnavailable', `the connection to the agent of node "${node}" is congested; retry in a second`, { retryAfterSeconds: 1 });
    streams.set(id, sink);
    return () => {
      if (streams.delete(id)) conn.send({ t: 'logCancel', id });
    };
  }

  close(): Promise<void> {
    return this.wire.close();
  }

  private authenticate(req: IncomingMessage): CredentialCheck {
    let user: User;
    try {
      user = this.authenticator.authenticate(req.headers.authorization);
    } catch (err) {
      return { ok: false, reason: err instanceof ApiError ? err.message : 'Unauthorized' };
    }
    if (user.role !== 'node' || user.node === undefined) return { ok: false, reason: `only agents (node credentials) may connect here; ${user.name} is a ${user.role}` };
    return { ok: true, name: user.node };
  }

  private serve(conn: WireConnection): void {
    const node = conn.remote;
    const user: User = { name: `system:node:${node}`, role: 'node', node };
    this.byNode.set(node, [...(this.byNode.get(node) ?? []), conn]);
    this.logger.info({ node }, 'agent connected');
    const watches = new Map<number, () => void>();
    const logs = new Map<number, LogSink>();
    this.logStreams.set(conn, logs);
    const limit = new InFlightLimit(conn, MAX_IN_FLIGHT);
    const reply = (frame: Frame): void => {
      if (!send(conn, frame)) conn.reject(CLOSE.slowConsumer, 'the agent is not reading its responses');
    };
    // An answer too large for one frame (an unpaged list of big objects) is refused with the
    // bound named; it must never throw out of the reply (that would end the master).
    const answer = (id: number, result: ApiResult): void => {
      try {
        if (!conn.send({ t: 'res', id, code: result.code, body: result.body as Frame })) conn.reject(CLOSE.slowConsumer, 'the agent is not reading its responses');
      } catch (err) {
        if (!isWireError(err, 'frame-too-large')) throw err;
        const e = new ApiError('RequestEntityTooLarge', `the answer is larger than this connection's ${MAX_FRAME_BYTES / 1024 / 1024} MiB frame limit (${err.message}); list with limit and continue, or narrow the request`);
        reply({ t: 'res', id, code: e.code, body: e.toStatus() as unknown as Frame });
      }
    };
    conn.on('close', (code, reason) => {
      for (const stop of watches.values()) stop();
      watches.clear();
      this.logStreams.delete(conn);
      for (const sink of logs.values()) sink.end({ code: 503, message: `the agent of node "${node}" disconnected from this master, so the log stream ended; read it again once the agent reconnects` });
      logs.clear();
      const left = (this.byNode.get(node) ?? []).filter((c) => c !== conn);
      if (left.length === 0) this.byNode.delete(node);
      else this.byNode.set(node, left);
      this.logger.info({ node, code, reason }, 'agent disconnected');
    });
    conn.on('frame', (frame) => {
      const id = frame['id'];
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
        conn.reject(CLOSE.invalidData, 'every frame needs a numeric id');
        return;
      }
      switch (frame['t']) {
        case 'req': {
          limit.begin();
          void this.request(user, frame)
            .then((result) => answer(id, result))
            .catch((err: unknown) => {
              this.logger.error({ err: (err as Error).stack, node }, 'agent reply failed unexpectedly');
              conn.reject(CLOSE.internalError, 'the master could not answer a request');
            })
            .finally(() => limit.end());
          return;
        }
        case 'watch':
          void this.watch(user, id, frame, conn, watches);
          return;
        case 'cancel':
          watches.get(id)?.();
          return;
        case 'logData': {
          const data = frame['data'];
          if (!(data instanceof Uint8Array)) return conn.reject(CLOSE.invalidData, 'logData needs data as bytes');
          logs.get(id)?.data(data);
          return;
        }
        case 'logEnd': {
          const error = logError(frame['error']);
          if (error === null) return conn.reject(CLOSE.invalidData, 'logEnd error must be {code: an HTTP error code, message: a string}');
          const sink = logs.get(id);
          logs.delete(id);
          sink?.end(error);
          return;
        }
        default:
          conn.reject(CLOSE.invalidData, `unknown frame type ${JSON.stringify(frame['t'])}`);
      }
    });
  }

  /** Runs one request; failures become the Status a client would get over HTTP. */
  private async request(user: User, frame: Frame): Promise<ApiResult> {
    try {
      const call = toCall(frame);
      if (this.api.watchOf(user, call) !== undefined) throw new ApiError('BadRequest', 'send watches as {t: "watch"} frames');
      // Agents' requests take seats like everyone's (each node is a user of its own).
      const release = await this.api.admission.seat(call.method === 'GET' ? 'reads' : 'changes', user.name);
      try {
        return await this.api.withTimeout(this.api.execute(user, call), `${call.method} ${call.path}`);
      } finally {
        release();
      }
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError('InternalError', `an internal error occurred: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) this.logger.error({ err: (err as Error).stack, node: user.node }, 'agent request failed unexpectedly');
      return { code: e.code, body: e.toStatus() };
    }
  }

  private async watch(user: User, id: number, frame: Frame, conn: WireConnection, watches: Map<number, () => void>): Promise<void> {
    const refuse = (e: ApiError): void => {
      send(conn, { t: 'event', id, type: 'ERROR', object: e.toStatus() as unknown as Frame });
      send(conn, { t: 'watchEnd', id });
    };
    if (watches.has(id)) return refuse(new ApiError('BadRequest', `watch ${id} is already open on this connection`));
    if (watches.size >= MAX_WATCHES) return refuse(new ApiError('TooManyRequests', `an agent may hold at most ${MAX_WATCHES} watches open on one connection`, { retryAfterSeconds: 1 }));
    let ended = false;
    watches.set(id, () => {
      ended = true;
    }); // reserved while the watch starts
    let done: (() => void) | undefined;
    try {
      const call = toCall({ ...frame, method: 'GET' });
      const what = this.api.watchOf(user, call);
      if (what === undefined) throw new ApiError('BadRequest', 'a watch frame must address a collection or object to watch (add ?watch=true or use /watch/)');
      done = this.api.admission.longRunningFor(user.name, 'watch');
      const release = await this.api.admission.seat('reads', user.name);
      let stop: () => void;
      try {
        stop = await runWatch(this.api.objects, what.r, what.namespace, call.query, this.bookmarkSeconds, {
          write: (type, object) => send(conn, { t: 'event', id, type, object: object as Frame }),
          end: () => {
            done?.();
            watches.delete(id);
            send(conn, { t: 'watchEnd', id });
          },
        });
      } finally {
        release();
      }
      if (ended || !conn.open) stop();
      else if (watches.has(id)) watches.set(id, stop);
    } catch (err) {
      done?.();
      watches.delete(id);
      const e = err instanceof ApiError ? err : new ApiError('InternalError', `an internal error occurred: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) this.logger.error({ err: (err as Error).stack, node: user.node }, 'agent watch failed unexpectedly');
      refuse(e);
    }
  }
}

/**
 * Sends a frame; false when the agent cannot take it (congested, or the frame is over the
 * limit, which only an object near the size bound can make: the watch ends and the agent
 * watches again).
 */
function send(conn: WireConnection, frame: Frame): boolean {
  try {
    return conn.send(frame);
  } catch (err) {
    if (isWireError(err, 'frame-too-large')) return false;
    throw err;
  }
}

/** The error of a logEnd frame: undefined for none, null when malformed. */
function logError(error: unknown): { code: number; message: string } | undefined | null {
  if (error === undefined || error === null) return undefined;
  if (typeof error !== 'object' || Array.isArray(error)) return null;
  const { code, message } = error as Record<string, unknown>;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 400 || code > 599 || typeof message !== 'string') return null;
  return { code, message: message.length > MAX_LOG_ERROR_CHARS ? `${message.slice(0, MAX_LOG_ERROR_CHARS)}…` : message };
}

/** A request frame as an ApiCall; throws ApiError (400) for a malformed one. */
function toCall(frame: Frame): ApiCall {
  const method = frame['method'];
  const path = frame['path'];
  if (typeof method !== 'string' || !['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) throw new ApiError('BadRequest', 'method must be GET, POST, PUT, PATCH or DELETE');
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('?')) throw new ApiError('BadRequest', 'path must be an absolute path without a query (put the query in "query")');
  const query = new URLSearchParams();
  const q = frame['query'];
  if (q !== undefined) {
    if (typeof q !== 'object' || q === null || Array.isArray(q)) throw new ApiError('BadRequest', 'query must be a map of strings');
    for (const [k, v] of Object.entries(q)) {
      for (const x of Array.isArray(v) ? v : [v]) {
        if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') throw new ApiError('BadRequest', `query.${k} must be a string`);
        query.append(k, String(x));
      }
    }
  }
  const contentType = frame['contentType'];
  if (contentType !== undefined && typeof contentType !== 'string') throw new ApiError('BadRequest', 'contentType must be a string');
  const body = frame['body'];
  return {
    method,
    maxAnswer: LIST_BOUND,
    path: path.replace(/\/+$/, '') || '/',
    query,
    accept: 'application/json',
    contentType: contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'),
    body: async (optional) => {
      if (body === undefined || body === null) {
        if (optional) return undefined;
        throw new ApiError('BadRequest', 'the request needs a body');
      }
      checkBody(body);
      return structuredClone(body);
    },
  };
}

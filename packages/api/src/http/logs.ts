// GET /api/v1/namespaces/NS/pods/NAME/log: a container's log, which lives on the node that runs
// the pod. The master asks the node's agent for it over the agent's WebSocket (agents.ts) and
// streams what comes back as text/plain with chunked encoding, as the kube-apiserver streams
// what the kubelet sends. Headers wait for the first data or the end, so an error the agent
// reports (no previous run, container still waiting) becomes a Kubernetes Status with its code.
//
// The agent may be connected to another master: then the request is forwarded to the other
// masters' APIs in turn, with the client's own Authorization (each master authorizes it
// again) and x-flotilla-log-forwarded: 1, which keeps a forwarded request from being
// forwarded again. The first answer that is not "the agent is not connected here" (a 503
// marked x-flotilla-log-agent: not-connected) is streamed back.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '@flotilla/wire';
import { ApiError, REASONS } from '../errors.ts';
import type { Pod } from '../types/core.ts';
import type { Status } from '../types/meta.ts';
import { requestUrl } from './route.ts';

/** What the master asks an agent for (the fields of the 'logs' frame besides t and id). */
export interface LogRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
  readonly container: string;
  /** Keep sending what the container writes until cancelled or the container exits. */
  readonly follow: boolean;
  /** The container's run before the current one. */
  readonly previous: boolean;
  readonly tailLines?: number;
  readonly limitBytes?: number;
  readonly sinceSeconds?: number;
}

/** Where a log stream goes. */
export interface LogSink {
  data(chunk: Uint8Array): void;
  /** No more data; `error` (an HTTP status code and a message) if the log could not be read. */
  end(error?: { readonly code: number; readonly message: string }): void;
}

/** Marks a request one master forwarded to another; such a request is not forwarded again. */
const LOG_FORWARDED_HEADER = 'x-flotilla-log-forwarded';
/** On a forwarded request's 503: `not-connected` when the agent is not connected to that master. */
const LOG_AGENT_HEADER = 'x-flotilla-log-agent';
/** A client that lets this much log pile up unsent is cut off (the agent does not slow down). */
const MAX_BUFFERED = 16 * 1024 * 1024;
/** A follow stream's headers go out after this long even if the container wrote nothing yet. */
const FOLLOW_HEADERS_MS = 1000;
/** How long a peer master may take to answer a forwarded request (its headers). */
const FORWARD_TIMEOUT_MS = 10_000;

/**
 * The log request for `pod` from the query, checked as Kubernetes checks PodLogOptions.
 * Throws ApiError (400) for a pod not on a node yet, a missing or unknown container, and
 * malformed options.
 */
export function logRequestOf(pod: Pod, query: URLSearchParams): LogRequest {
  const name = pod.metadata.name ?? '';
  if (pod.spec.nodeName === undefined || pod.spec.nodeName === '') throw new ApiError('BadRequest', `pod "${name}" is not assigned to a node yet, so it has no logs`);
  const names = pod.spec.containers.map((c) => c.name);
  let container = query.get('container') ?? '';
  if (container === '') {
    if (names.length !== 1) throw new ApiError('BadRequest', `a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`);
    container = names[0]!;
  } else if (!names.includes(container)) {
    throw new ApiError('BadRequest', `container ${container} is not valid for pod ${name}`);
  }
  if (query.has('sinceSeconds') && query.has('sinceTime')) throw new ApiError('BadRequest', 'at most one of `sinceTime` or `sinceSeconds` may be specified');
  if (bool(query, 'timestamps')) throw new ApiError('BadRequest', 'timestamps=true is not supported: Flotilla keeps container output without timestamps');
  const tailLines = int(query, 'tailLines', 0);
  const limitBytes = int(query, 'limitBytes', 1);
  const sinceSeconds = int(query, 'sinceSeconds', 1) ?? sinceTime(query);
  return {
    namespace: pod.metadata.namespace ?? '',
    pod: name,
    uid: pod.metadata.uid ?? '',
    container,
    follow: bool(query, 'follow'),
    previous: bool(query, 'previous'),
    ...(tailLines === undefined ? {} : { tailLines }),
    ...(limitBytes === undefined ? {} : { limitBytes }),
    ...(sinceSeconds === undefined ? {} : { sinceSeconds }),
  };
}

/** A boolean query parameter as Go's strconv.ParseBool reads it (absent: false). */
function bool(query: URLSearchParams, key: string): boolean {
  const v = query.get(key);
  if (v === null || v === '') return false;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new ApiError('BadRequest', `${key} must be true or false, got ${JSON.stringify(v)}`);
}

function int(query: URLSearchParams, key: string, min: number): number | undefined {
  const v = query.get(key);
  if (v === null) return undefined;
  const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ApiError('BadRequest', `${key} must be an integer, got ${JSON.stringify(v)}`);
  if (n < min) throw new ApiError('BadRequest', `${key} must be greater than ${min === 0 ? 'or equal to 0' : min - 1}, got ${n}`);
  return n;
}

/** sinceTime (RFC 3339, what kubectl logs --since-time sends) as seconds before now. */
function sinceTime(query: URLSearchParams): number | undefined {
  const v = query.get('sinceTime');
  if (v === null) return undefined;
  const t = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\dT/.test(v) || Number.isNaN(t)) throw new ApiError('BadRequest', `sinceTime must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got ${JSON.stringify(v)}`);
  return Math.max(1, Math.ceil((Date.now() - t) / 1000));
}

export interface ServeLogOptions {
  readonly pod: Pod;
  readonly request: LogRequest;
  /**
   * Asks the pod's agent for the log if it is connected to this master: returns cancel(), or
   * undefined when it is not connected here. May throw ApiError (e.g. 429, too many streams).
   */
  readonly open: (sink: LogSink) => (() => void) | undefined;
  /** The other masters' API base URLs, tried in turn when the agent is not connected here. */
  readonly peers: readonly string[];
  /** The cluster CA, to verify https peers. */
  readonly ca?: string;
  readonly logger: Logger;
}

/** Serves one log request (already authorized). Throws ApiError while nothing was sent. */
export async function serveLog(req: IncomingMessage, res: ServerResponse, o: ServeLogOptions): Promise<void> {
  const local = streamFrom(res, o);
  if (local !== undefined) return local;
  const node = o.pod.spec.nodeName ?? '';
  const forwarded = req.headers[LOG_FORWARDED_HEADER] !== undefined;
  if (!forwarded) {
    for (const peer of o.peers) {
      if (res.destroyed) return;
      if (await forward(peer, req, res, o)) return;
    }
  }
  const where = forwarded ? 'this master' : 'any master';
  const e = new ApiError('ServiceUnavailable', `the agent of node "${node}" is not connected to ${where}, so the logs of pod "${o.request.pod}" cannot be read now`, { retryAfterSeconds: 5 });
  if (!forwarded) throw e;
  // Marked, so the forwarding master tries the next one (other 503s are answers to pass on).
  sendStatus(res, e.toStatus(), { 'retry-after': '5', [LOG_AGENT_HEADER]: 'not-connected' });
}

/** Streams from the agent if it is connected to this master; undefined if it is not. */
function streamFrom(res: ServerResponse, o: ServeLogOptions): Promise<void> | undefined {
  let headersSent = false;
  let finished = false;
  let endsWithNewline = true;
  let timer: NodeJS.Timeout | undefined;
  let cancel: (() => void) | undefined;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const finish = (): void => {
    finished = true;
    clearTimeout(timer);
    resolve();
  };
  const begin = (): void => {
    if (headersSent) return;
    headersSent = true;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
  };
  const sink: LogSink = {
    data(chunk) {
      if (finished || chunk.byteLength === 0) return;
      begin();
      res.write(chunk);
      endsWithNewline = chunk[chunk.byteLength - 1] === 0x0a;
      if (res.writableLength > MAX_BUFFERED) {
        o.logger.warn({ pod: `${o.request.namespace}/${o.request.pod}`, container: o.request.container }, 'a log reader is not keeping up; cutting it off');
        finish();
        cancel?.();
        res.destroy();
      }
    },
    end(error) {
      if (finished) return;
      finish();
      if (error === undefined) {
        begin();
        res.end();
      } else if (!headersSent) {
        sendStatus(res, statusOf(error.code, error.message));
      } else {
        // The client has a 200 already: the reason goes at the end of the text.
        res.end(`${endsWithNewline ? '' : '\n'}${error.message}\n`);
      }
    },
  };
  cancel = o.open(sink);
  if (cancel === undefined) return undefined;
  res.on('close', () => {
    if (finished) return;
    finish();
    cancel?.();
  });
  if (o.request.follow) timer = setTimeout(begin, FOLLOW_HEADERS_MS);
  return done;
}

/**
 * Forwards the request to one peer master. Resolves true once the peer's answer was streamed
 * back (or the client left), false if the peer could not be reached or the agent is not
 * connected there either, so the next one is tried.
 */
function forward(peer: string, req: IncomingMessage, res: ServerResponse, o: ServeLogOptions): Promise<boolean> {
  // Only the peer's origin, the pod's own log path and the query go out: the request target
  // may be absolute-form (GET http://any-host/…), and a forwarder that resolved it against
  // the peer would fetch whatever host it named (SSRF).
  const asked = requestUrl(req.url);
  const url = new URL(peer);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(o.pod.metadata.namespace ?? '')}/pods/${encodeURIComponent(o.pod.metadata.name ?? '')}/log`;
  url.search = asked.search;
  url.hash = '';
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers: Record<string, string> = { [LOG_FORWARDED_HEADER]: '1' };
  if (req.headers.authorization !== undefined) headers['authorization'] = req.headers.authorization;
  return new Promise<boolean>((resolve) => {
    let settled = false;
    let answered = false;
    const settle = (served: boolean): void => {
      if (settled) return;
      settled = true;
      res.off('close', clientGone);
      resolve(served);
    };
    const out = send(url, { method: 'GET', headers, timeout: FORWARD_TIMEOUT_MS, ...(o.ca === undefined ? {} : { ca: o.ca }) }, (answer) => {
      if (answer.statusCode === 503 && answer.headers[LOG_AGENT_HEADER] === 'not-connected') {
        answer.resume();
        out.destroy();
        settle(false);
        return;
      }
      answered = true;
      out.setTimeout(0); // a follow stream may be quiet for long
      const copy: Record<string, string> = {};
      for (const h of ['content-type', 'content-length', 'cache-control', 'retry-after']) {
        const v = answer.headers[h];
        if (typeof v === 'string') copy[h] = v;
      }
      res.writeHead(answer.statusCode ?? 502, copy);
      res.flushHeaders();
      answer.pipe(res);
      answer.on('close', () => {
        // The peer went away mid-stream: say so at the end of the text.
        if (!answer.complete && !res.writableEnded && !res.destroyed) res.end(`\nthe log stream ended early: master ${peer}, which serves it, went away\n`);
        settle(true);
      });
    });
    const clientGone = (): void => {
      out.destroy();
      settle(true);
    };
    res.on('close', clientGone);
    out.on('timeout', () => out.destroy(new Error(`no answer within ${FORWARD_TIMEOUT_MS} ms`)));
    out.on('error', (err) => {
      if (answered) return; // the answer's close handler ends the response
      o.logger.info({ peer, err: err.message }, 'could not forward a log request to a peer master; trying the next');
      settle(false);
    });
    out.end();
  });
}

/** A Status for an error code the agent gave (any 4xx or 5xx). */
function statusOf(code: number, message: string): Status {
  const reason = (Object.keys(REASONS) as (keyof typeof REASONS)[]).find((r) => REASONS[r] === code);
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, ...(reason === undefined ? {} : { reason }), code };
}

function sendStatus(res: ServerResponse, status: Status, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(status);
  res.writeHead(status.code, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.end(text);
}

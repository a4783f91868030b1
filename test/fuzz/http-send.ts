// Sending one generated request and waiting for its answer: through Node's https client when
// it can express the request, over a raw TLS socket when it cannot (absolute-form targets,
// malformed lines and headers). "Answered" means a status line arrived within the timeout;
// a watch or followed log is answered by its headers and then held open for a while.
import { Agent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { Bytes, ManyKeys, Nest, Rep, jsonText, short, str, type Str } from './spec.ts';
import type { BodySpec, HttpReq } from './gen-http.ts';
import type { Cred } from './world.ts';

export interface SendContext {
  readonly ssrf: string;
  readonly ssrfPort: number;
  readonly rv: () => string;
  readonly node: string;
  readonly tokens: Readonly<Record<'admin' | 'viewer' | 'node' | 'join' | 'garbage', string>>;
}

export interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly ca: string;
}

export interface Outcome {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer;
  readonly bodyComplete: boolean;
  /** A client-side or connection error, when no status came. */
  readonly error?: string;
  /** The server closed the connection without answering. */
  readonly closed?: boolean;
  readonly timedOut?: boolean;
  /** Node's client refused to send it (so it went raw). */
  readonly viaRaw: boolean;
  readonly ms: number;
}

/** What was sent, made concrete (what a finding prints). */
export interface Materialized {
  readonly method: string;
  readonly target: string;
  readonly headers: (readonly [string, string])[];
  readonly body?: Buffer;
  readonly chunked: boolean;
  readonly lieLength?: number;
  /** The whole request, for raw ones. */
  readonly raw?: Buffer;
}

export function fill(s: Str, ctx: SendContext): string {
  const text = str(s);
  if (!text.includes('{{')) return text;
  return text.replaceAll('{{SSRF}}', ctx.ssrf).replaceAll('{{SSRF_PORT}}', String(ctx.ssrfPort)).replaceAll('{{RV}}', ctx.rv()).replaceAll('{{NODE}}', ctx.node);
}

/** Query encoding as a client would, but leaving everything that may stay as it is. */
export function encodeQuery(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === ' ') out += '+';
    else if (ch === '%' || ch === '&' || ch === '#' || ch === '+' || ch === '=' || c < 0x21 || c > 0x7e) {
      for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    } else out += ch;
  }
  return out;
}

function authHeader(cred: Cred, ctx: SendContext): string | undefined {
  switch (cred) {
    case 'admin':
      return `Bearer ${ctx.tokens.admin}`;
    case 'viewer':
      return `Bearer ${ctx.tokens.viewer}`;
    case 'node':
      return `Bearer ${ctx.tokens.node}`;
    case 'garbage':
      return `Bearer ${ctx.tokens.garbage}`;
    case 'basic':
      return `Basic ${Buffer.from('admin:admin').toString('base64')}`;
    default:
      return undefined;
  }
}

function bodyBytes(b: BodySpec, ctx: SendContext): Buffer {
  const parts: Buffer[] = [];
  if (b.pre !== undefined) parts.push(Buffer.from(b.pre, b.raw instanceof Bytes && b.pre.length > 0 && /[\u0080-\u00ff]/.test(b.pre) ? 'latin1' : 'utf8'));
  if (b.json !== undefined) parts.push(Buffer.from(fill(jsonText(b.json), ctx), 'utf8'));
  const raw = b.raw;
  if (raw instanceof Bytes) parts.push(raw.materialize());
  else if (raw instanceof Nest || raw instanceof ManyKeys) parts.push(Buffer.from(raw.materialize(), 'utf8'));
  else if (raw instanceof Rep || typeof raw === 'string') parts.push(Buffer.from(fill(raw, ctx), 'utf8'));
  if (b.post !== undefined) parts.push(Buffer.from(b.post, 'utf8'));
  return Buffer.concat(parts);
}

export function materialize(req: HttpReq, ctx: SendContext): Materialized {
  const query = req.query.map(([k, v]) => `${encodeQuery(k)}=${encodeQuery(fill(v, ctx))}`).join('&');
  const target = `${fill(req.path, ctx)}${query === '' ? '' : `?${query}`}`;
  const headers: (readonly [string, string])[] = [];
  const joinMarked = req.headers.some(([k]) => k === 'x-use-join-token');
  const auth = joinMarked ? `Bearer ${ctx.tokens.join}` : authHeader(req.cred, ctx);
  if (auth !== undefined) headers.push(['authorization', auth]);
  for (const [k, v] of req.headers) if (k !== 'x-use-join-token') headers.push([k, v]);
  const body = req.body === undefined ? undefined : bodyBytes(req.body, ctx);
  if (req.raw === undefined) {
    return { method: req.method, target, headers, chunked: req.body?.chunked === true, ...(body === undefined ? {} : { body }), ...(req.body?.lieLength === undefined ? {} : { lieLength: req.body.lieLength }) };
  }
  const line = req.raw.line === undefined ? `${req.method} ${target} HTTP/1.1` : fill(req.raw.line, ctx);
  const lines = [line];
  if (req.raw.noHost !== true) lines.push('host: fuzz.invalid');
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  for (const l of req.raw.lines ?? []) lines.push(fill(l, ctx));
  const hasLength = (req.raw.lines ?? []).some((l) => /^(content-length|transfer-encoding):/i.test(str(l)));
  if (body !== undefined && !hasLength) lines.push(`content-length: ${body.byteLength}`);
  if (!lines.some((l) => /^connection:/i.test(l))) lines.push('connection: close');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const tail = req.raw.tail === undefined ? (body ?? Buffer.alloc(0)) : Buffer.from(fill(req.raw.tail, ctx), 'latin1');
  return { method: req.method, target: line, headers, chunked: false, raw: Buffer.concat([head, tail]) };
}

/** A readable one-line form of what was sent. */
export function describeMaterialized(m: Materialized): string {
  if (m.raw !== undefined) return `raw ${JSON.stringify(short(m.raw.toString('latin1'), 400))} (${m.raw.byteLength} bytes)`;
  const hs = m.headers.filter(([k]) => k !== 'authorization').map(([k, v]) => `${k}: ${short(v, 80)}`);
  const auth = m.headers.find(([k]) => k === 'authorization')?.[1];
  const who = auth === undefined ? 'no token' : auth.startsWith('Bearer test-admin') ? 'admin' : auth.startsWith('Bearer test-viewer') ? 'viewer' : auth.startsWith('Bearer test-join') ? 'join token' : auth.startsWith('Bearer garbage') ? 'garbage token' : auth.startsWith('Basic') ? 'basic auth' : 'node token';
  const body = m.body === undefined ? '' : ` body(${m.body.byteLength}${m.chunked ? ', chunked' : ''}${m.lieLength === undefined ? '' : `, content-length claims ${m.lieLength}`}): ${JSON.stringify(short(m.body.toString('utf8'), 300))}`;
  return `${m.method} ${short(m.target, 400)} [${who}]${hs.length === 0 ? '' : ` {${hs.join('; ')}}`}${body}`;
}

const agents = new Map<string, Agent>();
function agentFor(t: Target, pool: string): Agent {
  const key = `${pool} ${t.host}:${t.port}`;
  let a = agents.get(key);
  if (a === undefined) {
    a = new Agent({ keepAlive: true, maxSockets: 24, ca: t.ca });
    agents.set(key, a);
  }
  return a;
}

export function closeAgents(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

const MAX_BODY = 40 * 1024 * 1024;

function flatHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Sends `m` to `t`; resolves with what came back (never rejects). `holdMs`: a stream, held
 * that long after its headers, then closed (answered all the same). `pool` 'fresh' (the
 * fuzzer's requests): a connection of its own, so a reset is the server's doing, never a
 * keep-alive race with an idle socket.
 */
export function send(t: Target, m: Materialized, timeoutMs: number, holdMs: number | undefined, pool = 'fresh'): Promise<Outcome> {
  if (m.raw !== undefined) return sendRaw(t, m.raw, timeoutMs, holdMs, false);
  const headers: Record<string, string | number> = {};
  for (const [k, v] of m.headers) headers[k] = v;
  if (m.body !== undefined && !m.chunked) headers['content-length'] = m.lieLength ?? m.body.byteLength;
  let req: ReturnType<typeof httpsRequest>;
  const started = performance.now();
  try {
    req = httpsRequest({ host: t.host, port: t.port, method: m.method, path: m.target, headers, agent: pool === 'fresh' ? false : agentFor(t, pool), ca: t.ca });
  } catch {
    // Node's client will not send it (a path, method or header it refuses): send it raw.
    return sendRaw(t, rawOf(m), timeoutMs, holdMs, true);
  }
  return new Promise<Outcome>((resolve) => {
    let done = false;
    const finish = (o: Omit<Outcome, 'ms' | 'viaRaw'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...o, viaRaw: false, ms: performance.now() - started });
    };
    const timer = setTimeout(() => {
      finish({ bodyComplete: false, timedOut: true, error: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const hs = flatHeaders(res.headers);
      clearTimeout(timer);
      if (holdMs !== undefined && status < 300) {
        // A stream: answered now; read it for a while, then hang up.
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < 65536) chunks.push(c);
          size += c.length;
        });
        const hold = setTimeout(() => {
          res.destroy();
          req.destroy();
        }, holdMs);
        const end = (): void => {
          clearTimeout(hold);
          if (done) return;
          done = true;
          resolve({ status, headers: hs, body: Buffer.concat(chunks), bodyComplete: res.complete, viaRaw: false, ms: performance.now() - started });
        };
        res.on('close', end);
        res.on('error', end);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const bodyTimer = setTimeout(() => res.destroy(), Math.max(timeoutMs, 30_000));
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) res.destroy();
        else chunks.push(c);
      });
      const end = (): void => {
        clearTimeout(bodyTimer);
        if (done) return;
        done = true;
        resolve({ status, headers: hs, body: Buffer.concat(chunks), bodyComplete: res.complete, viaRaw: false, ms: performance.now() - started });
      };
      res.on('end', end);
      res.on('close', end);
      res.on('error', end);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      finish({ bodyComplete: false, error: `${err.code ?? ''} ${err.message}`.trim(), closed: err.code === 'ECONNRESET' || err.code === 'EPIPE' || /socket hang up/.test(err.message) });
    });
    if (m.body !== undefined) {
      if (m.chunked) {
        for (let i = 0; i < m.body.byteLength; i += 65536) req.write(m.body.subarray(i, i + 65536));
      } else req.write(m.body);
    }
    req.end();
  });
}

export function rawOf(m: Materialized): Buffer {
  const lines = [`${m.method} ${m.target} HTTP/1.1`, 'host: fuzz.invalid', ...m.headers.map(([k, v]) => `${k}: ${v}`)];
  if (m.body !== undefined) lines.push(`content-length: ${m.lieLength ?? m.body.byteLength}`);
  lines.push('connection: close');
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), m.body ?? Buffer.alloc(0)]);
}

/** Writes bytes to a TLS connection and reads one HTTP response (skipping 1xx ones). */
export function sendRaw(t: Target, bytes: Buffer, timeoutMs: number, holdMs: number | undefined, viaRaw: boolean): Promise<Outcome> {
  const started = performance.now();
  return new Promise<Outcome>((resolve) => {
    let done = false;
    let buf = Buffer.alloc(0);
    let status: number | undefined;
    let headers: Record<string, string> | undefined;
    let bodyStart = 0;
    let hold: NodeJS.Timeout | undefined;
    const sock = tlsConnect({ host: t.host, port: t.port, ca: t.ca });
    const finish = (o: Omit<Outcome, 'ms' | 'viaRaw'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(hold);
      sock.destroy();
      resolve({ ...o, viaRaw: true, ms: performance.now() - started });
    };
    void viaRaw;
    const timer = setTimeout(() => {
      if (status !== undefined) finish({ status, ...(headers === undefined ? {} : { headers }), body: buf.subarray(bodyStart), bodyComplete: false });
      else finish({ bodyComplete: false, timedOut: true, error: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    const parse = (): void => {
      for (;;) {
        if (status === undefined) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1').split('\r\n');
          const m = /^HTTP\/\d\.\d (\d{3})/.exec(head[0] ?? '');
          if (m === null) return finish({ bodyComplete: false, error: `not an HTTP response: ${JSON.stringify(short(head[0] ?? '', 80))}`, closed: true });
          const code = Number(m[1]);
          const hs: Record<string, string> = {};
          for (const l of head.slice(1)) {
            const i = l.indexOf(':');
            if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
          }
          if (code >= 100 && code < 200 && code !== 101) {
            buf = buf.subarray(end + 4);
            continue;
          }
          status = code;
          headers = hs;
          bodyStart = end + 4;
          clearTimeout(timer);
          if (holdMs !== undefined && code < 300) hold = setTimeout(() => finish({ status: code, headers: hs, body: buf.subarray(bodyStart), bodyComplete: false }), holdMs);
          else setTimeout(() => finish({ status: code, headers: hs, body: buf.subarray(bodyStart), bodyComplete: false }), Math.max(timeoutMs, 30_000)).unref();
        }
        // the body
        const body = buf.subarray(bodyStart);
        const len = headers!['content-length'];
        if (len !== undefined && /^\d+$/.test(len)) {
          if (body.byteLength >= Number(len)) finish({ status: status!, headers: headers!, body: body.subarray(0, Number(len)), bodyComplete: true });
          return;
        }
        if (/chunked/i.test(headers!['transfer-encoding'] ?? '')) {
          const decoded = dechunk(body);
          if (decoded !== undefined) finish({ status: status!, headers: headers!, body: decoded, bodyComplete: true });
          return;
        }
        if (status === 204 || status === 304 || status === 101) finish({ status: status!, headers: headers!, body: Buffer.alloc(0), bodyComplete: true });
        return;
      }
    };
    sock.on('secureConnect', () => {
      sock.write(bytes);
    });
    sock.on('data', (c: Buffer) => {
      if (buf.byteLength < MAX_BODY) buf = Buffer.concat([buf, c]);
      parse();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (status !== undefined) finish({ status, headers: headers!, body: buf.subarray(bodyStart), bodyComplete: false });
      else finish({ bodyComplete: false, error: `${err.code ?? ''} ${err.message}`.trim(), closed: err.code === 'ECONNRESET' || err.code === 'EPIPE' });
    });
    sock.on('close', () => {
      if (status !== undefined) finish({ status, headers: headers!, body: buf.subarray(bodyStart), bodyComplete: true });
      else finish({ bodyComplete: false, closed: true, error: buf.byteLength === 0 ? 'closed without an answer' : `closed after ${buf.byteLength} bytes that are not a response` });
    });
  });
}

/** A whole chunked body, or undefined if more is to come. */
function dechunk(b: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) return undefined;
    const size = parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(size)) return Buffer.concat(parts);
    if (size === 0) return Buffer.concat(parts);
    if (b.byteLength < eol + 2 + size + 2) return undefined;
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

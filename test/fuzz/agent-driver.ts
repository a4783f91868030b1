// The agent socket: a WebSocket per master as the fuzzer's node (its node credential), carrying
// generated req/watch/cancel frames, answering the masters' log requests with odd log frames;
// malformed frames each on a connection of their own (they should cost only that connection).
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { encode } from './msgpack.ts';
import { Bytes, Rep, describeValue } from './spec.ts';
import type { AgentAction } from './gen-frames.ts';
import type { Flight, Ledger } from './ledger.ts';
import { BIG_NS } from './world.ts';

const AGENT_PATH = '/flotilla/v1/agent';
const ANSWER_MS = 15_000;
const unpackr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface AgentTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly ca: string;
}

export interface AgentDriverOptions {
  readonly ledger: Ledger;
  /** False once the phase is over: a long action (the big events) stops between its steps. */
  readonly running: () => boolean;
  readonly targets: () => readonly AgentTarget[];
  readonly alive: (name: string) => boolean;
  readonly tokens: { readonly node: string; readonly admin: string; readonly viewer: string; readonly join: string; readonly garbage: string };
  readonly rv: () => string;
  readonly onRv: (rv: number) => void;
  readonly exitedDuring: (master: string, from: number, to: number) => boolean;
}

interface Pending {
  readonly flight: Flight;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (frame: Record<string, unknown> | undefined) => void;
}

function fillFrame(v: unknown, rv: string): unknown {
  if (typeof v === 'string') return v.includes('{{RV}}') ? v.replaceAll('{{RV}}', rv) : v;
  if (Array.isArray(v)) return v.map((x) => fillFrame(x, rv));
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: fillFrame((v as Record<string, unknown>)[k], rv), enumerable: true, writable: true, configurable: true });
  return out;
}

/** One connection to one master. */
class Conn {
  readonly pending = new Map<number, Pending>();
  private nextId = 1;
  closed = false;
  closeCode: number | undefined;
  closeReason = '';
  /** A frame came from the master (any). */
  frames = 0;

  private constructor(
    readonly target: AgentTarget,
    readonly ws: WebSocket,
    private readonly onLogs: (conn: Conn, frame: Record<string, unknown>) => void,
  ) {
    ws.on('message', (data, isBinary) => {
      this.frames++;
      if (!isBinary) return;
      let frame: Record<string, unknown>;
      try {
        frame = unpackr.unpack(data as Buffer) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof frame !== 'object' || frame === null) return;
      const id = frame['id'];
      if (frame['t'] === 'logs' || frame['t'] === 'logCancel') return this.onLogs(this, frame);
      if (typeof id !== 'number') return;
      const p = this.pending.get(id);
      if (p !== undefined && (frame['t'] === 'res' || frame['t'] === 'event' || frame['t'] === 'watchEnd')) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(frame);
      }
    });
    ws.on('close', (code, reason) => {
      this.closed = true;
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.resolve(undefined);
      }
    });
    ws.on('error', () => undefined);
  }

  static open(target: AgentTarget, authorization: string | undefined, onLogs: (conn: Conn, frame: Record<string, unknown>) => void): Promise<Conn | { refused: number | string }> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`wss://${target.host}:${target.port}${AGENT_PATH}`, {
        headers: authorization === undefined ? {} : { authorization },
        ca: target.ca,
        maxPayload: 64 * 1024 * 1024,
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
      });
      let settled = false;
      ws.on('unexpected-response', (_req, res) => {
        settled = true;
        resolve({ refused: res.statusCode ?? 0 });
        ws.terminate();
      });
      ws.on('open', () => {
        settled = true;
        resolve(new Conn(target, ws, onLogs));
      });
      ws.on('error', (err) => {
        if (!settled) {
          settled = true;
          resolve({ refused: (err as NodeJS.ErrnoException).code ?? err.message });
        }
      });
      ws.on('close', () => {
        if (!settled) {
          settled = true;
          resolve({ refused: 'closed' });
        }
      });
    });
  }

  id(): number {
    return this.nextId++;
  }

  /** Sends a frame that expects an answer with its id; resolves with it, or undefined (closed, or no answer in time). */
  ask(id: number, bytes: Buffer, flight: Flight, timeoutMs = ANSWER_MS): Promise<Record<string, unknown> | undefined | 'timeout'> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(undefined);
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve('timeout');
      }, timeoutMs);
      this.pending.set(id, { flight, timer, resolve });
      this.ws.send(bytes, { binary: true }, () => undefined);
    });
  }

  close(): void {
    this.closed = true;
    try {
      this.ws.terminate();
    } catch {
      // gone
    }
  }
}

export class AgentDriver {
  private readonly conns = new Map<string, Conn>();
  private bigCreated = false;
  private stopped = false;

  constructor(private readonly o: AgentDriverOptions) {}

  stop(): void {
    this.stopped = true;
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }

  private target(master: number): AgentTarget | undefined {
    const live = this.o.targets().filter((t) => this.o.alive(t.name));
    return live.length === 0 ? undefined : live[master % live.length];
  }

  private async main(t: AgentTarget): Promise<Conn | undefined> {
    const have = this.conns.get(t.name);
    if (have !== undefined && !have.closed) return have;
    const c = await Conn.open(t, `Bearer ${this.o.tokens.node}`, (conn, frame) => this.answerLogs(conn, frame));
    if (!(c instanceof Conn)) return undefined;
    this.conns.set(t.name, c);
    return c;
  }

  /** The master asks us (the node's agent) for a pod's log: answer, sometimes oddly, always within a couple of seconds. */
  private answerLogs(conn: Conn, frame: Record<string, unknown>): void {
    if (frame['t'] !== 'logs') return;
    const id = frame['id'];
    if (typeof id !== 'number') return;
    const roll = id % 10;
    const send = (f: unknown): void => {
      if (!conn.closed) conn.ws.send(encode(f), { binary: true }, () => undefined);
    };
    setTimeout(() => {
      if (roll < 5) {
        send({ t: 'logData', id, data: Buffer.from(`line ${id}\n`) });
        send({ t: 'logEnd', id });
      } else if (roll === 5) send({ t: 'logEnd', id, error: { code: 404, message: 'previous terminated container "main" not found' } });
      else if (roll === 6) {
        send({ t: 'logData', id, data: new Bytes(1024 * 1024, id, 'ascii') });
        send({ t: 'logEnd', id, error: { code: 500, message: new Rep('e', 5000) } });
      } else if (roll === 7) {
        send({ t: 'logData', id: id + 1_000_000, data: Buffer.from('stray') });
        send({ t: 'logEnd', id });
      } else if (roll === 8) {
        send({ t: 'logData', id, data: Buffer.alloc(0) });
        send({ t: 'logEnd', id, error: null });
      } else {
        send({ t: 'logEnd', id, error: { code: 503, message: '\u0000\ud800' } });
      }
    }, (id * 37) % 1500);
  }

  /** Runs one generated action; resolves when it is over. */
  async run(a: AgentAction, origin: string): Promise<void> {
    if (this.stopped) return;
    const t = this.target(a.master);
    if (t === undefined) return;
    const L = this.o.ledger;
    switch (a.type) {
      case 'req':
      case 'watch': {
        const conn = await this.main(t);
        if (conn === undefined) return;
        const id = conn.id();
        const frame = { ...(fillFrame(a.frame, this.o.rv()) as Record<string, unknown>), id };
        const family = `agent:${a.type}`;
        const flight = L.begin({ channel: 'agent', master: t.name, family, desc: `${a.type} ${describeValue(frame, 500)}`, origin, payload: () => encode(frame) });
        L.counters.requests++;
        L.counters.agent_frames++;
        let answer = await conn.ask(id, encode(frame), flight, a.type === 'watch' ? 5000 : ANSWER_MS);
        if (a.type === 'watch' && answer === 'timeout' && !conn.closed) {
          // A watch of nothing sends nothing (no bookmarks asked for): it is answered if the
          // connection still serves (a probe on it is answered), and its events may come later.
          const pid = conn.id();
          const probe = await conn.ask(pid, encode({ t: 'req', id: pid, method: 'GET', path: '/api/v1/namespaces/fz-s0/pods', query: { limit: 1 } }), flight);
          if (probe !== 'timeout' && probe !== undefined) {
            L.counters.answered++;
            L.counters.agent_quiet_watches++;
            L.end(flight, 'quiet');
            setTimeout(() => {
              if (!conn.closed) conn.ws.send(encode({ t: 'cancel', id }), { binary: true }, () => undefined);
            }, a.cancelAfterMs);
            return;
          }
          answer = probe;
        }
        this.settle(flight, answer, conn);
        if (a.type === 'watch' && answer !== undefined && answer !== 'timeout' && answer['t'] === 'event' && !conn.closed) {
          setTimeout(() => {
            if (!conn.closed) conn.ws.send(encode({ t: 'cancel', id }), { binary: true }, () => undefined);
          }, a.cancelAfterMs);
        }
        return;
      }
      case 'malformed': {
        const c = await Conn.open(t, `Bearer ${this.o.tokens.node}`, () => undefined);
        if (!(c instanceof Conn)) return;
        const m = a.m;
        const flight = L.begin({ channel: 'agent', master: t.name, family: 'agent:malformed', desc: `malformed frame (${m.label}): ${m.text !== undefined ? `text ${JSON.stringify(m.text)}` : m.bytes !== undefined ? (m.bytes instanceof Bytes ? m.bytes.describe() : `bytes(${m.bytes.byteLength})`) : describeValue(m.value, 300)}`, origin, payload: () => bytesOf(m) });
        L.counters.requests++;
        L.counters.agent_frames++;
        const before = c.frames;
        try {
          if (m.text !== undefined) c.ws.send(m.text, { binary: false });
          else c.ws.send(bytesOf(m), { binary: true }, () => undefined);
        } catch {
          // could not even send it
        }
        const deadline = Date.now() + 3000;
        while (!c.closed && c.frames === before && Date.now() < deadline) await sleep(25);
        if (c.closed) {
          L.counters.agent_closed_by_server++;
          L.counters.answered++;
          L.end(flight, `closed ${c.closeCode ?? ''}`.trim());
          if (c.closeCode === 1011) {
            L.counters.server_errors++;
            L.finding('server-error', 'agent:malformed', `1011 ${m.label.replace(/\d+/g, 'N')}`, { response: `the master closed the agent connection with 1011 (internal error): ${c.closeReason}` }, flight);
          }
        } else if (c.frames > before) {
          L.counters.answered++;
          L.end(flight, 'replied');
        } else {
          L.counters.agent_ignored++;
          L.end(flight, 'ignored');
        }
        c.close();
        return;
      }
      case 'connect': {
        const auth = a.cred === 'none' ? undefined : `Bearer ${this.o.tokens[a.cred]}`;
        const flight = L.begin({ channel: 'agent', master: t.name, family: 'agent:connect', desc: `agent socket upgrade with ${a.cred === 'none' ? 'no token' : `the ${a.cred} token`}`, origin });
        L.counters.requests++;
        const c = await Conn.open(t, auth, () => undefined);
        if (c instanceof Conn) {
          L.end(flight, 'opened');
          L.finding('auth', 'agent:connect', a.cred, { detail: `the agent socket accepted a connection with ${a.cred === 'none' ? 'no token' : `the ${a.cred} token`} (only node credentials may connect)` }, flight);
          c.close();
        } else {
          L.counters.answered++;
          L.end(flight, c.refused);
        }
        return;
      }
      case 'big-list': {
        const conn = await this.main(t);
        if (conn === undefined) return;
        if (!this.bigCreated) {
          let made = 0;
          for (let i = 0; i < a.count && !conn.closed && !this.stopped && this.o.running(); i++) {
            const id = conn.id();
            const frame = { t: 'req', id, method: 'POST', path: `/api/v1/namespaces/${BIG_NS}/events`, body: { apiVersion: 'v1', kind: 'Event', metadata: { name: `big-${i}` }, reason: 'Big', type: 'Normal', message: new Rep('x', a.size), involvedObject: { kind: 'Pod', name: 'p', namespace: BIG_NS } } };
            const flight = L.begin({ channel: 'agent', master: t.name, family: 'agent:big-list', desc: `req POST /api/v1/namespaces/${BIG_NS}/events big-${i} (message of ${a.size} bytes)`, origin });
            L.counters.requests++;
            L.counters.agent_frames++;
            const answer = await conn.ask(id, encode(frame), flight);
            this.settle(flight, answer, conn);
            if (typeof answer === 'object' && (answer['code'] === 201 || answer['code'] === 409)) made++;
          }
          // Only once all of them are there (a master that went away meanwhile: make them again next time).
          this.bigCreated = made === a.count;
        }
        if (conn.closed || !this.bigCreated) return;
        const id = conn.id();
        const frame = { t: 'req', id, method: 'GET', path: a.listPath };
        const flight = L.begin({ channel: 'agent', master: t.name, family: 'agent:big-list', desc: `req GET ${a.listPath} over the agent socket (a dozen events of ~${(a.size / 1e6).toFixed(1)} MB each: more than a 16 MiB frame)`, origin, payload: () => encode(frame) });
        L.counters.requests++;
        L.counters.agent_frames++;
        this.settle(flight, await conn.ask(id, encode(frame), flight), conn);
        return;
      }
    }
  }

  private settle(flight: Flight, answer: Record<string, unknown> | undefined | 'timeout', conn: Conn): void {
    const L = this.o.ledger;
    if (answer === 'timeout') {
      L.counters.unanswered++;
      L.end(flight, 'timeout');
      L.finding('unanswered', flight.family, 'timeout', { detail: `no answer on the agent socket within ${ANSWER_MS / 1000} s` }, flight);
      return;
    }
    if (answer === undefined) {
      if (this.o.exitedDuring(flight.master, flight.started, Date.now() + 2000) || !this.o.alive(flight.master)) {
        L.counters.cut_by_exit++;
        L.end(flight, 'cut by exit');
        return;
      }
      // The master closed our connection instead of answering.
      L.end(flight, `closed ${conn.closeCode ?? ''}`.trim());
      L.counters.agent_closed_by_server++;
      L.counters.answered++;
      if (conn.closeCode === 1011) {
        L.counters.server_errors++;
        L.finding('server-error', flight.family, `1011 ${String(conn.closeReason).slice(0, 60)}`, { response: `the master closed the agent connection with 1011 (internal error): ${conn.closeReason}` }, flight);
      }
      return;
    }
    L.counters.answered++;
    const code = typeof answer['code'] === 'number' ? answer['code'] : undefined;
    L.end(flight, code ?? String(answer['t']));
    const body = answer['body'] as { message?: unknown; metadata?: { resourceVersion?: unknown } } | undefined;
    const rv = Number(body?.metadata?.resourceVersion);
    if (Number.isSafeInteger(rv)) this.o.onRv(rv);
    if (answer['t'] === 'event' && answer['type'] === 'ERROR') {
      const obj = answer['object'] as { code?: number; message?: string } | undefined;
      if (obj?.code === 504 && /^Too large resource version/.test(String(obj.message))) L.counters.too_large_rv_504++;
      else if (typeof obj?.code === 'number' && obj.code >= 500 && obj.code !== 503) {
        L.counters.server_errors++;
        L.finding('server-error', flight.family, `${obj.code} ${normalize(obj.message)}`, { response: `watch ERROR event ${obj.code}: ${String(obj.message).slice(0, 400)}` }, flight);
      }
    }
    if (code === undefined) return;
    if (code === 503) L.counters.status_503++;
    if (code === 429) L.counters.status_429++;
    if (code === 504 && /^Too large resource version/.test(String(body?.message))) L.counters.too_large_rv_504++;
    else if (code >= 500 && code !== 503) {
      L.counters.server_errors++;
      L.finding('server-error', flight.family, `${code} ${normalize(body?.message)}`, { response: `res ${code}: ${String(body?.message).slice(0, 400)}` }, flight);
    }
  }
}

function bytesOf(m: { value?: unknown; bytes?: Bytes | Uint8Array; text?: string }): Buffer {
  if (m.bytes !== undefined) return m.bytes instanceof Bytes ? m.bytes.materialize() : Buffer.from(m.bytes);
  if (m.text !== undefined) return Buffer.from(m.text);
  return encode(m.value);
}

export function normalize(message: unknown): string {
  return String(message ?? '')
    .replace(/\d+/g, 'N')
    .replace(/"[^"]*"/g, '"…"')
    .slice(0, 80);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

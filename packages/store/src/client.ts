import { randomBytes } from 'node:crypto';
import { Dialer, isWireError, makeCredential, silentLogger, type Frame, type Logger, type WireConnection } from '@flotilla/wire';
import { KV_ERROR_CODES, KvError, isKvError, type KvErrorCode } from './errors.ts';
import type {
  Compare,
  CompactResponse,
  DeleteRangeResponse,
  KeyRange,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseRevokeResponse,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnResponse,
  WatchEvent,
  WatchRequest,
  WriteRequest,
  WriteResponse,
} from './kv/types.ts';
import type { StoreStatus } from './node.ts';

export interface KvClientOptions {
  /** The masters' client addresses, e.g. ws://127.0.0.1:7201. */
  readonly endpoints: readonly string[];
  readonly secret: string;
  /** The name this client authenticates as (shows in the masters' logs). */
  readonly name?: string;
  /** How long an operation may take in all, retries included. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** How long one attempt on one master may take before trying another. Default 1500 ms. */
  readonly attemptTimeoutMs?: number;
  readonly logger?: Logger;
}

interface Header {
  readonly member: string;
  readonly leader: string | null;
  readonly term: number;
}

interface Pending {
  readonly resolve: (frame: Frame) => void;
  readonly reject: (err: KvError) => void;
}

/** One master: its connection and the requests waiting on it. */
class Endpoint {
  readonly dialer: Dialer;
  member: string | undefined;
  readonly pending = new Map<number, Pending>();
  readonly watchFrames = new Map<number, (frame: Frame) => void>();
  private readonly connectWaiters: (() => void)[] = [];

  constructor(
    readonly url: string,
    options: KvClientOptions,
    logger: Logger,
  ) {
    this.dialer = new Dialer({
      url,
      remote: url,
      credential: () => makeCredential(options.secret, options.name ?? 'client'),
      maxFrameBytes: 4 * 1024 * 1024,
      maxBufferedBytes: 32 * 1024 * 1024,
      heartbeatMs: 2000,
      logger,
      backoff: { initialMs: 25, maxMs: 500 },
      connectTimeoutMs: 1000,
      onConnect: (conn) => this.connected(conn),
      onDisconnect: () => this.disconnected(),
    });
    this.dialer.start();
  }

  get connection(): WireConnection | undefined {
    return this.dialer.connection;
  }

  /** Resolves once connected, or after `ms` (whichever first). */
  waitConnected(ms: number): Promise<void> {
    if (this.connection !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.connectWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private connected(conn: WireConnection): void {
    conn.on('frame', (frame) => {
      const id = frame['id'] as number;
      if (frame['t'] === 'res') {
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        p.resolve(frame);
      } else {
        this.watchFrames.get(id)?.(frame);
      }
    });
    for (const w of this.connectWaiters.splice(0)) w();
  }

  private disconnected(): void {
    const err = new KvError('unavailable', `lost the connection to ${this.url}`);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const onFrame of [...this.watchFrames.values()]) onFrame({ t: 'lost' });
  }

  close(): void {
    this.dialer.stop();
    this.disconnected();
  }
}

export interface WatchHandler {
  /** One revision's events, in order; revisions only go up. */
  readonly onEvents: (revision: number, events: readonly WatchEvent[]) => void;
  /** The watch ended for good (`compacted`, `invalid-request`, or the client closed). */
  readonly onError?: (err: KvError) => void;
}

export interface Watch {
  cancel(): void;
}

/**
 * A key-value client for a Flotilla cluster. It keeps a connection to every master, sends to
 * the leader when it knows it (any master would forward), and when a master dies or cannot
 * answer it retries on another until the operation's deadline. Writes carry a client id and a
 * sequence number, so a retried write is applied exactly once. Errors are KvError.
 */
export class KvClient {
  private readonly endpoints: Endpoint[];
  private session = newSession();
  private nextFrameId = 1;
  private leaderName: string | null = null;
  private rotation = 0;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new KvError('invalid-request', 'a client needs at least one master address');
    const logger = options.logger ?? silentLogger;
    this.endpoints = options.endpoints.map((u) => new Endpoint(withPath(u), options, logger));
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 1500;
  }

  // ---------------------------------------------------------------------------------------
  // Key-value operations.

  async get(key: string, options: { serializable?: boolean; revision?: number } = {}): Promise<RangeResponse> {
    return this.range({ key, ...(options.revision === undefined ? {} : { revision: options.revision }) }, options);
  }

  async range(request: RangeRequest, options: { serializable?: boolean } = {}): Promise<RangeResponse> {
    return (await this.call({ op: 'range', request, serializable: options.serializable === true, timeoutMs: this.attemptTimeoutMs })) as RangeResponse;
  }

  put(key: string, value: Uint8Array, options: { lease?: number; prevKv?: boolean } = {}): Promise<PutResponse> {
    return this.write({ type: 'put', key, value, ...options }) as Promise<PutResponse>;
  }

  delete(range: KeyRange & { prevKv?: boolean }): Promise<DeleteRangeResponse> {
    return this.write({ type: 'deleteRange', ...range }) as Promise<DeleteRangeResponse>;
  }

  txn(compare: readonly Compare[], success: readonly RequestOp[], failure: readonly RequestOp[] = []): Promise<TxnResponse> {
    return this.write({ type: 'txn', compare, success, failure }) as Promise<TxnResponse>;
  }

  leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse> {
    return this.write({ type: 'leaseGrant', ttl, ...(id === undefined ? {} : { id }) }) as Promise<LeaseGrantResponse>;
  }

  leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return this.write({ type: 'leaseRevoke', id }) as Promise<LeaseRevokeResponse>;
  }

  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    return this.write({ type: 'leaseKeepAlive', id }) as Promise<LeaseKeepAliveResponse>;
  }

  compact(revision: number): Promise<CompactResponse> {
    return this.write({ type: 'compact', revision }) as Promise<CompactResponse>;
  }

  /** Any write, applied exactly once however often it is retried. */
  async write(request: WriteRequest): Promise<WriteResponse> {
    const session = this.session;
    const seq = ++session.seq;
    session.inFlight.add(seq);
    try {
      const s = { client: session.id, seq, firstUnacked: session.inFlight.values().next().value! };
      return (await this.call({ op: 'write', request, session: s, timeoutMs: this.attemptTimeoutMs })) as WriteResponse;
    } catch (err) {
      // The cluster forgot this session: later writes go out under a new one (this one fails).
      if (isKvError(err, 'session-expired') && this.session === session) this.session = newSession();
      throw err;
    } finally {
      session.inFlight.delete(seq);
    }
  }

  /** One master's status (for `flotilla status`); throws when it cannot be reached in time. */
  async statusOf(url: string, timeoutMs = 1000): Promise<StoreStatus> {
    const ep = this.endpoints.find((e) => e.url === withPath(url));
    if (ep === undefined) throw new KvError('invalid-request', `${url} is not one of this client's masters`);
    await ep.waitConnected(timeoutMs);
    const frame = await this.attempt(ep, { op: 'status' }, timeoutMs);
    return frame['result'] as StoreStatus;
  }

  /** Asks the cluster to change membership or leadership (any master forwards to the leader's rules). */
  async admin(request: { op: 'member'; action: 'addLearner' | 'promote' | 'remove'; name: string; peerUrl?: string } | { op: 'transfer'; to: string }, timeoutMs = 30_000): Promise<void> {
    await this.call(request, timeoutMs, true);
  }

  // ---------------------------------------------------------------------------------------
  // Watches.

  /**
   * Watches a key or range from `startRevision` (or from now). Events arrive in order with no
   * gap; if the master serving the watch goes away, the watch resumes on another master from
   * the next revision. Ends only on cancel(), close(), or an error it cannot recover from.
   */
  watch(request: WatchRequest, handler: WatchHandler): Watch {
    let next = request.startRevision ?? 0;
    let cancelled = false;
    let current: { ep: Endpoint; id: number } | undefined;
    const finish = (err: KvError): void => {
      if (cancelled) return;
      cancelled = true;
      handler.onError?.(err);
    };
    const subscribe = async (): Promise<void> => {
      while (!cancelled && !this.closed) {
        const ep = await this.pickEndpoint(new Set());
        if (ep?.connection === undefined) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const id = this.nextFrameId++;
        current = { ep, id };
        const ended = new Promise<KvError | undefined>((resolve) => {
          ep.watchFrames.set(id, (frame) => {
            switch (frame['t']) {
              case 'watchStarted':
                if (next === 0) next = frame['from'] as number;
                return;
              case 'events': {
                const revision = frame['revision'] as number;
                if (revision < next) return; // already delivered before a resume
                next = revision + 1;
                if (!cancelled) handler.onEvents(revision, frame['events'] as WatchEvent[]);
                return;
              }
              case 'watchEnd': {
                const e = frame['error'] as { code: KvErrorCode; message: string } | undefined;
                resolve(e === undefined ? undefined : toKvError(e));
                return;
              }
              case 'lost':
                resolve(new KvError('unavailable', 'connection lost'));
                return;
            }
          });
        });
        const sent = ep.connection?.send({ t: 'watch', id, request: { ...request, ...(next > 0 ? { startRevision: next } : {}) } }) ?? false;
        const err = sent ? await ended : new KvError('unavailable', 'could not send');
        ep.watchFrames.delete(id);
        current = undefined;
        if (cancelled || err === undefined) return;
        if (err.code !== 'unavailable' && err.code !== 'slow-consumer' && err.code !== 'closed' && err.code !== 'corrupt') {
          finish(err);
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    void subscribe();
    return {
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        if (current !== undefined) current.ep.connection?.send({ t: 'cancel', id: current.id });
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const ep of this.endpoints) ep.close();
  }

  // ---------------------------------------------------------------------------------------

  /**
   * Runs a request, retrying on other masters when one is unreachable, has no leader, or does
   * not answer in time, until the deadline.
   */
  private async call(request: Frame, timeoutMs = this.timeoutMs, admin = false): Promise<unknown> {
    if (this.closed) throw new KvError('closed', 'the client is closed');
    const deadline = Date.now() + timeoutMs;
    let last: KvError | undefined;
    /** The last refusal that says why (not a redirect or a timeout), for the final error. */
    let reason: KvError | undefined;
    const tried = new Set<Endpoint>();
    while (Date.now() < deadline) {
      const ep = await this.pickEndpoint(tried);
      if (ep === undefined) {
        tried.clear();
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      tried.add(ep);
      let sent = request;
      if (admin) {
        // The leader retries a change it cannot make yet (a learner still catching up) for as
        // long as it is told: less than this client still waits, so that its reason comes
        // back rather than "did not answer", and it stops retrying before this client gives up
        // (a change it already proposed may still be applied after).
        const serverMs = Math.min(600_000, Math.round(deadline - Date.now() - Math.min(1000, timeoutMs / 5)));
        if (serverMs < 1) break;
        sent = { ...request, timeoutMs: serverMs };
      }
      try {
        const frame = await this.attempt(ep, sent, Math.min(admin ? timeoutMs : this.attemptTimeoutMs, Math.max(1, deadline - Date.now())));
        return frame['result'];
      } catch (err) {
        if (!isKvError(err)) throw err;
        last = err;
        if (err.code !== 'not-leader' && err.code !== 'timeout') reason = err;
        // A master that cannot serve now (shutting down, checking its state, its disk full,
        // CORRUPT) did nothing with the request: another may serve it.
        if (err.code === 'not-leader' || err.code === 'unavailable' || err.code === 'timeout' || err.code === 'corrupt') {
          if (err.leader !== undefined) this.leaderName = err.leader;
          continue;
        }
        throw err;
      }
    }
    if (last !== undefined && last.code !== 'timeout' && last.code !== 'unavailable') throw last;
    throw new KvError('timeout', `no master answered within ${timeoutMs} ms (last: ${(reason ?? last)?.message ?? 'no master could be reached'})`);
  }

  private attempt(ep: Endpoint, request: Frame, timeoutMs: number): Promise<Frame> {
    const conn = ep.connection;
    if (conn === undefined) return Promise.reject(new KvError('unavailable', `not connected to ${ep.url}`));
    const id = this.nextFrameId++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        ep.pending.delete(id);
        reject(new KvError('timeout', `${ep.url} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      ep.pending.set(id, {
        resolve: (frame) => {
          clearTimeout(timer);
          this.learn(ep, frame);
          if (frame['ok'] === true) resolve(frame);
          else reject(toKvError(frame['error'] as { code: KvErrorCode; message: string; leader?: string }));
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      let sent: boolean;
      try {
        sent = conn.send({ t: 'req', id, ...request });
      } catch (err) {
        if (!isWireError(err, 'frame-too-large')) throw err;
        clearTimeout(timer);
        ep.pending.delete(id);
        reject(new KvError('too-large', `the request is too large to send: ${err.message}`));
        return;
      }
      if (!sent) {
        clearTimeout(timer);
        ep.pending.delete(id);
        reject(new KvError('unavailable', `${ep.url} is not accepting requests`));
      }
    });
  }

  private learn(ep: Endpoint, frame: Frame): void {
    const h = frame as unknown as Header;
    if (typeof h.member === 'string') ep.member = h.member;
    if (h.leader !== undefined) this.leaderName = h.leader;
  }

  /** The leader's endpoint if known and connected, else the next connected one not yet tried. */
  private async pickEndpoint(tried: ReadonlySet<Endpoint>): Promise<Endpoint | undefined> {
    const leader = this.endpoints.find((e) => e.member !== undefined && e.member === this.leaderName);
    if (leader !== undefined && !tried.has(leader) && leader.connection !== undefined) return leader;
    for (let i = 0; i < this.endpoints.length; i++) {
      const ep = this.endpoints[(this.rotation + i) % this.endpoints.length]!;
      if (!tried.has(ep) && ep.connection !== undefined) {
        this.rotation = (this.rotation + i + 1) % this.endpoints.length;
        return ep;
      }
    }
    // Nothing connected yet: give the untried ones a moment to connect.
    const waiting = this.endpoints.filter((e) => !tried.has(e));
    if (waiting.length === 0) return undefined;
    await Promise.race(waiting.map((e) => e.waitConnected(200)));
    return waiting.find((e) => e.connection !== undefined);
  }
}

function withPath(url: string): string {
  return url.endsWith('/kv') ? url : `${url.replace(/\/$/, '')}/kv`;
}

function toKvError(e: { code: KvErrorCode; message: string; leader?: string }): KvError {
  const code = (KV_ERROR_CODES as readonly string[]).includes(e.code) ? e.code : 'unavailable';
  return new KvError(code, e.message, e.leader);
}

/**
 * The identity under which writes are applied exactly once (thesis §6.3): a random client id,
 * the last sequence number used, and the sequence numbers in flight (added in increasing
 * order, so the first is the oldest unacknowledged one).
 */
interface ClientSession {
  readonly id: string;
  seq: number;
  readonly inFlight: Set<number>;
}

function newSession(): ClientSession {
  return { id: `c-${randomBytes(8).toString('hex')}`, seq: 0, inFlight: new Set() };
}

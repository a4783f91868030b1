import WebSocket from 'ws';
import { AUTH_HEADER } from './auth.ts';
import type { Frame } from './codec.ts';
import { WireConnection, type ConnectionOptions } from './connection.ts';

export interface DialOptions extends ConnectionOptions {
  /** ws:// or wss:// address of the WireServer. */
  readonly url: string;
  /** The name the connection is known by in logs (the peer we dial). */
  readonly remote: string;
  /** A fresh credential for each attempt (see makeCredential). */
  readonly credential: () => string;
  /** The upgrade request header that carries it (default x-flotilla-auth; agents send `authorization`). */
  readonly credentialHeader?: string;
  /** Reconnect delays: exponential from initialMs to maxMs, each with random jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How long one connection attempt may take. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /** Local address to connect from (each test master dials from its own loopback address). */
  readonly localAddress?: string;
  /** Extra TLS options for wss:// (e.g. the cluster CA). */
  readonly tls?: { readonly ca?: string | Buffer };
  readonly onConnect?: (conn: WireConnection) => void;
  readonly onDisconnect?: (reason: string) => void;
}

/**
 * A connection that keeps itself up: it dials, and whenever the connection drops or an
 * attempt fails it waits a jittered, exponentially growing delay and dials again, until
 * stop(). Jitter keeps a cluster's members from reconnecting in lock-step after an outage.
 */
export class Dialer {
  private conn: WireConnection | undefined;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private socket: WebSocket | undefined;

  constructor(private readonly options: DialOptions) {}

  get connection(): WireConnection | undefined {
    return this.conn?.open === true ? this.conn : undefined;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.dial();
  }

  /** Sends on the current connection; false when there is none or it pushes back. */
  send(frame: Frame): boolean {
    return this.connection?.send(frame) ?? false;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.conn?.close(1000, 'stopping');
    this.socket?.terminate();
    this.conn = undefined;
  }

  /** The delay before attempt n (0-based): uniformly in [cap/2, cap], cap = min(max, initial·2ⁿ). */
  static backoffDelay(n: number, initialMs: number, maxMs: number, random: number): number {
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(n, 30));
    return cap / 2 + (random * cap) / 2;
  }

  private dial(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.options.url, {
      headers: { [this.options.credentialHeader ?? AUTH_HEADER]: this.options.credential() },
      maxPayload: this.options.maxFrameBytes,
      handshakeTimeout: this.options.connectTimeoutMs ?? 2000,
      perMessageDeflate: false,
      ...(this.options.tls?.ca === undefined ? {} : { ca: this.options.tls.ca }),
      ...(this.options.localAddress === undefined ? {} : { localAddress: this.options.localAddress }),
    });
    this.socket = ws;
    let failure = 'connection closed';
    let conn: WireConnection | undefined;
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      if (this.conn === conn) this.conn = undefined;
      this.options.onDisconnect?.(reason);
      this.retry();
    };
    ws.on('unexpected-response', (_req, res) => {
      failure = `refused with HTTP ${res.statusCode}`;
      ws.terminate();
    });
    ws.on('error', (err) => {
      failure = err.message;
    });
    ws.on('open', () => {
      this.attempt = 0;
      conn = new WireConnection(ws, this.options.remote, this.options);
      this.conn = conn;
      conn.on('close', (code, reason) => end(reason === '' ? `closed (${code})` : reason));
      this.options.onConnect?.(conn);
    });
    ws.on('close', () => end(failure));
  }

  private retry(): void {
    if (this.stopped || this.timer !== undefined) return;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 50, maxMs: 2000 };
    const delay = Dialer.backoffDelay(this.attempt++, initialMs, maxMs, Math.random());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dial();
    }, delay);
    this.timer.unref();
  }
}

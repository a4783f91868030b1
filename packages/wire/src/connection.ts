import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { decodeFrame, encodeFrame, type Frame } from './codec.ts';
import { WireError, isWireError } from './errors.ts';
import type { Logger } from './logger.ts';

export interface ConnectionOptions {
  /** Frames larger than this are refused when sent and close the connection when received. */
  readonly maxFrameBytes: number;
  /** send() refuses a frame while this much is already waiting to go out (backpressure). */
  readonly maxBufferedBytes: number;
  /** Ping interval; a peer silent for two intervals is disconnected. 0 turns heartbeats off. */
  readonly heartbeatMs: number;
  /**
   * Received frames that declare more values than this (map members and list items, with the
   * maps and lists) are refused before they are decoded: decoding costs about a microsecond a
   * value on the event loop every connection shares. Unbounded if unset.
   */
  readonly maxFrameValues?: number;
  readonly logger: Logger;
}

export const DEFAULT_CONNECTION_OPTIONS = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  heartbeatMs: 1000,
} as const;

/** WebSocket close codes this package uses (RFC 6455 and the private 4000 range). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  invalidData: 1007,
  /** The peer refused us by policy (e.g. it does not admit our name or incarnation). */
  policy: 1008,
  internalError: 1011,
  tooBig: 1009,
  heartbeatTimeout: 4000,
  slowConsumer: 4001,
} as const;

interface Events {
  frame: [frame: Frame];
  close: [code: number, reason: string];
}

/**
 * One authenticated WebSocket carrying msgpack frames. Receiving: each binary message is one
 * frame; a malformed or oversized one closes this connection (and only it) with a logged
 * reason. Sending: send() returns false instead of queueing without bound when the peer does
 * not keep up, so the caller decides whether to drop (Raft messages) or disconnect (a client
 * that stopped reading).
 */
export class WireConnection extends EventEmitter<Events> {
  private alive = true;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /** Frames refused by backpressure since the connection opened. */
  dropped = 0;

  constructor(
    private readonly ws: WebSocket,
    /** Who is on the other side: the name the peer authenticated as, or the one we dialed. */
    readonly remote: string,
    private readonly options: ConnectionOptions,
  ) {
    super();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data, isBinary) => this.receive(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', (err) => {
      // ws reports protocol violations (a frame over maxPayload, bad UTF-8, …) as errors and
      // then closes the socket; log the reason, never let it escape as an uncaught error.
      this.options.logger.warn({ remote: this.remote, err: err.message }, 'connection error');
    });
    ws.on('close', (code, reason) => this.onClosed(code, reason.toString()));
    if (options.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN;
  }

  /** Bytes accepted by send() and not yet written to the socket. */
  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Sends one frame. Returns false, sending nothing, when the connection is closed or more
   * than maxBufferedBytes are already waiting. Throws WireError `frame-too-large`.
   */
  send(frame: Frame): boolean {
    if (!this.open) return false;
    const bytes = encodeFrame(frame);
    if (bytes.byteLength > this.options.maxFrameBytes) {
      throw new WireError('frame-too-large', `frame of ${bytes.byteLength} bytes exceeds the ${this.options.maxFrameBytes}-byte limit`);
    }
    if (this.ws.bufferedAmount + bytes.byteLength > this.options.maxBufferedBytes) {
      this.dropped++;
      return false;
    }
    this.ws.send(bytes, { binary: true });
    return true;
  }

  /** Stops reading frames (the socket's own buffers then push back on the sender). */
  pause(): void {
    if (this.open) this.ws.pause();
  }

  resume(): void {
    if (this.open) this.ws.resume();
  }

  close(code: number = CLOSE.normal, reason = ''): void {
    if (this.closed) return;
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(code, closeReason(reason));
      // A peer that never answers the closing handshake must not hold the socket open.
      setTimeout(() => this.ws.terminate(), 1000).unref();
    }
    this.onClosed(code, reason);
  }

  private receive(data: Buffer, isBinary: boolean): void {
    this.alive = true;
    if (this.closed) return;
    if (!isBinary) {
      this.reject(CLOSE.invalidData, 'text frames are not part of the protocol');
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(data, this.options.maxFrameValues);
    } catch (err) {
      if (!isWireError(err)) throw err;
      this.reject(err.code === 'frame-too-large' ? CLOSE.tooBig : CLOSE.invalidData, err.message);
      return;
    }
    try {
      this.emit('frame', frame);
    } catch (err) {
      // A handler that fails on a frame is a bug on this side, not the peer's; it costs this
      // connection, never the process (which serves every other connection).
      this.options.logger.error({ remote: this.remote, err: (err as Error).stack ?? String(err) }, 'frame handler failed; closing the connection');
      this.close(CLOSE.internalError, 'internal error');
    }
  }

  /** Closes this connection because the peer broke the protocol; logs why. */
  reject(code: number, reason: string): void {
    this.options.logger.warn({ remote: this.remote, code, reason }, 'closing connection');
    this.close(code, reason);
  }

  private beat(): void {
    if (!this.alive) {
      this.options.logger.warn({ remote: this.remote }, 'closing connection: no heartbeat reply');
      this.ws.terminate();
      this.onClosed(CLOSE.heartbeatTimeout, 'heartbeat timeout');
      return;
    }
    this.alive = false;
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  private onClosed(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.emit('close', code, reason);
  }
}

/**
 * Bounds the requests a server works on for one connection: at `max` in progress it stops
 * reading the connection's frames (the socket then pushes back on the sender), and it reads
 * again once half of them are done.
 */
export class InFlightLimit {
  private count = 0;
  private paused = false;

  constructor(
    private readonly conn: WireConnection,
    private readonly max: number,
  ) {}

  /** A request started. */
  begin(): void {
    this.count++;
    if (this.count >= this.max && !this.paused) {
      this.paused = true;
      this.conn.pause();
    }
  }

  /** A request finished (call once per begin()). */
  end(): void {
    this.count--;
    if (this.paused && this.count < this.max / 2) {
      this.paused = false;
      this.conn.resume();
    }
  }
}

/**
 * A close reason as the protocol allows it: at most 123 bytes of UTF-8 (RFC 6455 5.5: a control
 * frame's payload is at most 125 bytes, two of them the code). Cut at a character boundary, since
 * ws throws on a longer reason and a peer's words quoted into one must not end the process.
 */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > 120) break;
    out += ch;
    bytes += n;
  }
  return out + '...';
}

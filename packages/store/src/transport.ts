import type { Message, NodeId } from '@flotilla/raft';
import { CLOSE, Dialer, WireServer, makeCredential, secretAuthenticator, type Logger, type WireConnection } from '@flotilla/wire';

export interface PeerTransportOptions {
  readonly self: NodeId;
  readonly listen: { readonly host: string; readonly port: number };
  /** Bind outgoing connections to this local address (tests give each master its own). */
  readonly localAddress?: string;
  readonly secret: string;
  readonly logger: Logger;
  readonly maxFrameBytes: number;
  readonly heartbeatMs: number;
  /** Called for each Raft message a peer sends; `from` is checked against the peer's credential. */
  readonly onMessage: (m: unknown, from: NodeId) => void;
  /** Called when the connection to a peer breaks (or another attempt to connect fails). */
  readonly onPeerDown?: (peer: NodeId) => void;
}

/** Raft traffic between masters: one authenticated WebSocket per direction per peer. */
export class PeerTransport {
  private readonly dialers = new Map<NodeId, { url: string; dialer: Dialer }>();
  /** Messages dropped because a peer was unreachable or pushing back (Raft resends). */
  dropped = 0;

  private constructor(
    private readonly server: WireServer,
    private readonly options: PeerTransportOptions,
  ) {}

  static async start(options: PeerTransportOptions): Promise<PeerTransport> {
    let transport: PeerTransport | undefined;
    const server = await WireServer.listen(
      options.listen.host,
      options.listen.port,
      {
        authenticate: secretAuthenticator(options.secret),
        path: '/raft',
        maxFrameBytes: options.maxFrameBytes,
        // Raft retransmits what is lost; a peer that falls this far behind gets dropped frames.
        maxBufferedBytes: 4 * options.maxFrameBytes,
        heartbeatMs: options.heartbeatMs,
        logger: options.logger,
      },
      (conn) => transport!.accept(conn),
    );
    transport = new PeerTransport(server, options);
    return transport;
  }

  address(): { host: string; port: number } {
    return this.server.address();
  }

  /** Dials every peer in `peers` (id → ws:// address) and hangs up on those no longer listed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, { url, dialer }] of this.dialers) {
      if (peers.get(id) !== url) {
        dialer.stop();
        this.dialers.delete(id);
      }
    }
    for (const [id, url] of peers) {
      if (id === this.options.self || this.dialers.has(id)) continue;
      const dialer = new Dialer({
        url,
        remote: id,
        credential: () => makeCredential(this.options.secret, this.options.self),
        maxFrameBytes: this.options.maxFrameBytes,
        maxBufferedBytes: 4 * this.options.maxFrameBytes,
        heartbeatMs: this.options.heartbeatMs,
        logger: this.options.logger,
        backoff: { initialMs: 20, maxMs: 1000 },
        connectTimeoutMs: 1000,
        ...(this.options.localAddress === undefined ? {} : { localAddress: this.options.localAddress }),
        onConnect: () => this.options.logger.info({ peer: id }, 'peer connected'),
        onDisconnect: (reason) => {
          this.options.logger.info({ peer: id, reason }, 'peer disconnected');
          this.options.onPeerDown?.(id);
        },
      });
      this.dialers.set(id, { url, dialer });
      dialer.start();
    }
  }

  /** Sends a Raft message to its addressee, or drops it when that peer is out of reach. */
  send(m: Message): void {
    const peer = this.dialers.get(m.to);
    if (peer === undefined || !peer.dialer.send({ t: 'raft', m: m as unknown as Record<string, unknown> })) this.dropped++;
  }

  connectedPeers(): NodeId[] {
    return [...this.dialers].filter(([, p]) => p.dialer.connection !== undefined).map(([id]) => id);
  }

  private accept(conn: WireConnection): void {
    conn.on('frame', (frame) => {
      if (frame['t'] !== 'raft' || typeof frame['m'] !== 'object' || frame['m'] === null) {
        conn.reject(CLOSE.invalidData, 'peer frames must be {t: "raft", m: message}');
        return;
      }
      const m = frame['m'] as { from?: unknown };
      if (m.from !== conn.remote) {
        conn.reject(CLOSE.invalidData, `message claims to be from ${String(m.from)} but the connection authenticated as ${conn.remote}`);
        return;
      }
      this.options.onMessage(m, conn.remote);
    });
  }

  async close(): Promise<void> {
    for (const { dialer } of this.dialers.values()) dialer.stop();
    this.dialers.clear();
    await this.server.close();
  }
}

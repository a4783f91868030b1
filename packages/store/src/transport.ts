import type { Message, NodeId } from '@flotilla/raft';
import { CLOSE, Dialer, WireServer, makeCredential, secretAuthenticator, type Frame, type Logger, type WireConnection } from '@flotilla/wire';
import { validateHello, type Admission, type Hello, type Refusal } from './identity.ts';

// Peer connections, one per direction per peer. The dialer introduces itself first:
//   dialer → {t:'hello', member, memberId, cluster, clusterId}
//   dialer ← {t:'welcome'} | {t:'refused', reason, message}     (then the acceptor hangs up)
// and only after a welcome sends Raft messages {t:'raft', m} and control frames (hash checks,
// see hash-check.ts) {t:'control', c}; the acceptor answers control frames on the same
// connection. An acceptor reads nothing but a hello from a connection it has not admitted, so
// a name that is not a member, or an incarnation the cluster does not know, never reaches Raft.

/**
 * Values a peer's frame may declare: a 1 MiB batch of the smallest entries is about 250,000
 * (Raft's maxSizePerMsg); decoding costs about a microsecond each on the shared event loop.
 */
export const MAX_PEER_FRAME_VALUES = 1_000_000;

export interface PeerTransportOptions {
  readonly self: NodeId;
  readonly listen: { readonly host: string; readonly port: number };
  /** Bind outgoing connections to this local address (tests give each master its own). */
  readonly localAddress?: string;
  readonly secret: string;
  readonly logger: Logger;
  readonly maxFrameBytes: number;
  readonly heartbeatMs: number;
  /** What this master says about itself to the peers it dials. */
  readonly hello: () => Hello;
  /** Whether a peer that dialed us may talk to us. */
  readonly admit: (hello: Hello) => Promise<Admission>;
  /** The members of our configuration, told in a welcome (a new master counts its quorum on them). */
  readonly members: () => readonly NodeId[];
  /** Called for each Raft message a peer sends; `from` is checked against the peer's credential. */
  readonly onMessage: (m: unknown, from: NodeId) => void;
  /** Called when the connection to a peer breaks (or another attempt to connect fails). */
  readonly onPeerDown?: (peer: NodeId) => void;
  /** A peer we dialed admitted us (true) or refused us, and why. */
  readonly onIntroduced?: (peer: NodeId, answer: Introduction) => void;
  /** A control frame from an admitted peer; `reply` answers on the same connection. */
  readonly onControl?: (c: Frame, from: NodeId, reply: (c: Frame) => void) => void;
  /** An answer to a control frame we sent. */
  readonly onControlReply?: (c: Frame, from: NodeId) => void;
}

const REFUSALS: ReadonlySet<string> = new Set(['not-member', 'cluster', 'incarnation', 'retired', 'busy']);

/** A peer's answer to our hello: welcome (with the members it knows), or refused and why. */
export type Introduction = { readonly ok: true; readonly members: readonly NodeId[] } | { readonly ok: false; readonly reason: Refusal; readonly message: string };

interface Outgoing {
  readonly url: string;
  readonly dialer: Dialer;
  /** The peer welcomed us on the current connection. */
  admitted: boolean;
}

/** Raft traffic between masters: one authenticated, introduced WebSocket per direction per peer. */
export class PeerTransport {
  private readonly dialers = new Map<NodeId, Outgoing>();
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
        maxFrameValues: MAX_PEER_FRAME_VALUES,
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
      const out: Outgoing = { url, dialer: undefined as unknown as Dialer, admitted: false };
      const dialer = new Dialer({
        url,
        remote: id,
        credential: () => makeCredential(this.options.secret, this.options.self),
        maxFrameBytes: this.options.maxFrameBytes,
        maxFrameValues: MAX_PEER_FRAME_VALUES,
        maxBufferedBytes: 4 * this.options.maxFrameBytes,
        heartbeatMs: this.options.heartbeatMs,
        logger: this.options.logger,
        backoff: { initialMs: 20, maxMs: 1000 },
        connectTimeoutMs: 1000,
        ...(this.options.localAddress === undefined ? {} : { localAddress: this.options.localAddress }),
        onConnect: (conn) => this.introduce(id, out, conn),
        onDisconnect: (reason) => {
          out.admitted = false;
          this.options.logger.info({ peer: id, reason }, 'peer disconnected');
          this.options.onPeerDown?.(id);
        },
      });
      (out as { dialer: Dialer }).dialer = dialer;
      this.dialers.set(id, out);
      dialer.start();
    }
  }

  /** Sends a Raft message to its addressee, or drops it when that peer is out of reach. */
  send(m: Message): void {
    const peer = this.dialers.get(m.to);
    if (peer === undefined || !peer.admitted || !peer.dialer.send({ t: 'raft', m: m as unknown as Record<string, unknown> })) this.dropped++;
  }

  /** Sends a control frame to a peer that admitted us; false when it cannot go now. */
  sendControl(to: NodeId, c: Frame): boolean {
    const peer = this.dialers.get(to);
    return peer !== undefined && peer.admitted && peer.dialer.send({ t: 'control', c });
  }

  /** Peers that admitted us on a live connection. */
  connectedPeers(): NodeId[] {
    return [...this.dialers].filter(([, p]) => p.admitted && p.dialer.connection !== undefined).map(([id]) => id);
  }

  private introduce(id: NodeId, out: Outgoing, conn: WireConnection): void {
    out.admitted = false;
    conn.on('frame', (frame) => {
      switch (frame['t']) {
        case 'welcome': {
          if (!out.admitted) this.options.logger.info({ peer: id }, 'peer connected');
          out.admitted = true;
          const members = Array.isArray(frame['members']) ? frame['members'].filter((m): m is string => typeof m === 'string' && m.length <= 128).slice(0, 1000) : [];
          this.options.onIntroduced?.(id, { ok: true, members });
          return;
        }
        case 'refused': {
          const reason = String(frame['reason']);
          const message = typeof frame['message'] === 'string' ? frame['message'].slice(0, 1000) : 'refused';
          this.options.onIntroduced?.(id, { ok: false, reason: (REFUSALS.has(reason) ? reason : 'busy') as Refusal, message });
          return;
        }
        case 'control':
          if (typeof frame['c'] === 'object' && frame['c'] !== null && !Array.isArray(frame['c'])) this.options.onControlReply?.(frame['c'] as Frame, id);
          return;
        default:
          conn.reject(CLOSE.invalidData, `unexpected ${JSON.stringify(frame['t'])} frame from the peer we dialed`);
      }
    });
    conn.send({ t: 'hello', ...this.options.hello() });
  }

  private accept(conn: WireConnection): void {
    let state: 'waiting' | 'admitting' | 'admitted' = 'waiting';
    conn.on('frame', (frame) => {
      if (state === 'waiting') {
        if (frame['t'] !== 'hello') {
          conn.reject(CLOSE.invalidData, 'a peer must introduce itself (hello) before anything else');
          return;
        }
        const hello = validateHello(frame);
        if (typeof hello === 'string') {
          conn.reject(CLOSE.invalidData, hello);
          return;
        }
        if (hello.member !== conn.remote) {
          conn.reject(CLOSE.invalidData, `hello names ${hello.member} but the connection authenticated as ${conn.remote}`);
          return;
        }
        state = 'admitting';
        this.options.admit(hello).then(
          (verdict) => {
            if (!conn.open) return;
            if (verdict.ok) {
              state = 'admitted';
              conn.send({ t: 'welcome', members: [...this.options.members()] });
              return;
            }
            this.options.logger.warn({ peer: conn.remote, reason: verdict.reason }, `refused a peer: ${verdict.message}`);
            conn.send({ t: 'refused', reason: verdict.reason, message: verdict.message });
            // Closed once the answer is out, so the dialer reads why before the hang-up.
            setTimeout(() => conn.close(CLOSE.policy, verdict.reason), 50).unref();
          },
          (err: unknown) => conn.reject(CLOSE.internalError, `could not admit the peer: ${(err as Error).message}`),
        );
        return;
      }
      if (state === 'admitting') {
        conn.reject(CLOSE.invalidData, 'a peer must wait for its welcome before sending more');
        return;
      }
      if (frame['t'] === 'control') {
        const c = frame['c'];
        if (typeof c !== 'object' || c === null || Array.isArray(c)) {
          conn.reject(CLOSE.invalidData, 'control frames must be {t: "control", c: {...}}');
          return;
        }
        this.options.onControl?.(c as Frame, conn.remote, (answer) => {
          if (conn.open) conn.send({ t: 'control', c: answer });
        });
        return;
      }
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

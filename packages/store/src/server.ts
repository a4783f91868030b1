import type { IncomingMessage } from 'node:http';
import { CLOSE, InFlightLimit, WireServer, encodeFrame, isWireError, secretAuthenticator, type CredentialCheck, type Frame, type Logger, type WireConnection } from '@flotilla/wire';
import { KvError, isKvError } from './errors.ts';
import type { RevisionEvents } from './kv/mvcc.ts';
import { validateRange, validateSession, validateWatch, validateWrite } from './kv/validate.ts';
import type { StoreNode } from './node.ts';
import { MAX_PEER_FRAME_VALUES } from './transport.ts';

// The client protocol, one msgpack frame per message (see client.ts for the other side):
//   {t:'req', id, op:'write', request, session?, timeoutMs?}   → {t:'res', id, ok, result | error}
//   {t:'req', id, op:'range', request, serializable?}
//   {t:'req', id, op:'status'}
//   {t:'req', id, op:'member', action:'addLearner'|'promote'|'remove', name, peerUrl?, timeoutMs?}
//   {t:'req', id, op:'transfer', to}
//   {t:'watch', id, request}  → {t:'watchStarted', id, from}, {t:'events', id, revision, events}…,
//                               {t:'watchEnd', id, error?}
//   {t:'cancel', id}
// Every response names the master that answered and the leader it knows, so clients can find
// the leader.

/** Requests one connection may have in progress before the server stops reading from it. */
const MAX_IN_FLIGHT = 1024;
const MAX_FRAME_BYTES = 4 * 1024 * 1024;

export interface KvServerOptions {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
  readonly logger: Logger;
  /** Decide who may connect (default: a credential signed with the cluster secret). */
  readonly authenticate?: (req: IncomingMessage) => CredentialCheck;
}

/** Serves a StoreNode to KV clients over the wire protocol. */
export class KvServer {
  private constructor(
    private readonly server: WireServer,
    private readonly node: StoreNode,
  ) {}

  static async start(node: StoreNode, options: KvServerOptions): Promise<KvServer> {
    let kv: KvServer | undefined;
    const server = await WireServer.listen(
      options.host,
      options.port,
      {
        authenticate: options.authenticate ?? secretAuthenticator(options.secret),
        path: '/kv',
        maxFrameBytes: MAX_FRAME_BYTES,
        maxFrameValues: MAX_PEER_FRAME_VALUES,
        maxBufferedBytes: 32 * 1024 * 1024,
        heartbeatMs: 2000,
        logger: options.logger,
      },
      (conn) => kv!.serve(conn, options.logger),
    );
    kv = new KvServer(server, node);
    return kv;
  }

  address(): { host: string; port: number } {
    return this.server.address();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private serve(conn: WireConnection, logger: Logger): void {
    const limit = new InFlightLimit(conn, MAX_IN_FLIGHT);
    const watches = new Map<number, () => void>();
    const reply = (frame: Frame): void => {
      let sent: boolean;
      try {
        sent = conn.send(frame);
      } catch (err) {
        if (!isWireError(err, 'frame-too-large') || frame['t'] !== 'res') throw err;
        // A result too big for one frame: say so, and how to get it in pieces.
        sent = conn.send({ t: 'res', id: frame['id'], ok: false, error: { code: 'too-large', message: `the response is larger than the ${MAX_FRAME_BYTES}-byte frame limit; ask again with a limit and read it in pages` }, ...this.header() });
      }
      if (!sent) conn.reject(CLOSE.slowConsumer, 'the client is not reading its responses');
    };
    conn.on('close', () => {
      for (const cancel of watches.values()) cancel();
      watches.clear();
    });
    conn.on('frame', (frame) => {
      const id = frame['id'];
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
        conn.reject(CLOSE.invalidData, 'every frame needs a numeric id');
        return;
      }
      switch (frame['t']) {
        case 'req':
          limit.begin();
          this.handle(frame)
            .then(
              (result) => reply({ t: 'res', id, ok: true, result, ...this.header() }),
              (err: unknown) => {
                if (!isKvError(err)) logger.error({ err: (err as Error).message }, 'request failed unexpectedly');
                const e = isKvError(err) ? err : new KvError('unavailable', 'internal error');
                reply({ t: 'res', id, ok: false, error: { code: e.code, message: e.message, ...(e.leader === undefined ? {} : { leader: e.leader }) }, ...this.header() });
              },
            )
            .finally(() => limit.end());
          return;
        case 'watch':
          this.startWatch(id, frame['request'], watches, conn, reply);
          return;
        case 'cancel':
          watches.get(id)?.();
          return;
        default:
          conn.reject(CLOSE.invalidData, `unknown frame type ${JSON.stringify(frame['t'])}`);
      }
    });
  }

  private header(): Frame {
    const { leader, term } = this.node.leadership();
    return { member: this.node.id, leader, term };
  }

  private async handle(frame: Frame): Promise<unknown> {
    switch (frame['op']) {
      case 'write':
        return this.node.write(validateWrite(frame['request']), validateSession(frame['session']), timeoutOf(frame));
      case 'range': {
        const timeoutMs = timeoutOf(frame);
        return this.node.range(validateRange(frame['request']), { serializable: frame['serializable'] === true, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
      }
      case 'status':
        return this.node.status();
      case 'member': {
        const name = frame['name'];
        if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new KvError('invalid-request', 'name must be a lower-case member name');
        switch (frame['action']) {
          case 'addLearner':
            if (typeof frame['peerUrl'] !== 'string' || !/^wss?:\/\//.test(frame['peerUrl'])) throw new KvError('invalid-request', 'peerUrl must be a ws:// or wss:// address');
            await this.node.addLearner(name, { peerUrl: frame['peerUrl'] }, timeoutOf(frame));
            return {};
          case 'promote':
            await this.node.promote(name, timeoutOf(frame));
            return {};
          case 'remove':
            await this.node.removeMember(name, timeoutOf(frame));
            return {};
          default:
            throw new KvError('invalid-request', 'action must be addLearner, promote or remove');
        }
      }
      case 'transfer':
        if (typeof frame['to'] !== 'string') throw new KvError('invalid-request', 'to must be a member name');
        this.node.transferLeadership(frame['to']);
        return {};
      default:
        throw new KvError('invalid-request', 'op must be write, range, status, member or transfer');
    }
  }

  private startWatch(id: number, request: unknown, watches: Map<number, () => void>, conn: WireConnection, reply: (f: Frame) => void): void {
    if (watches.has(id)) {
      reply({ t: 'watchEnd', id, error: { code: 'invalid-request', message: `watch ${id} already exists on this connection` } });
      return;
    }
    try {
      // Sent before any event: the first revision the watch covers, for resuming without gaps.
      let started = false;
      const pending: Frame[] = [];
      const tooLarge = (revision: number): KvError => new KvError('too-large', `the events of revision ${revision} exceed the ${MAX_FRAME_BYTES}-byte frame limit`);
      const watch = this.node.watch(validateWatch(request), {
        // A watcher whose events pile up is ended (slow-consumer), not buffered without bound.
        deliver: (batch: RevisionEvents) => {
          const frame: Frame = { t: 'events', id, revision: batch.revision, events: batch.events as unknown as Frame[] };
          if (!started) {
            // The backlog, replayed before watchStarted can go out: held here, so checked here.
            if (encodeFrame(frame).byteLength > MAX_FRAME_BYTES) throw tooLarge(batch.revision);
            pending.push(frame);
            return true;
          }
          try {
            return conn.send(frame);
          } catch (err) {
            if (!isWireError(err, 'frame-too-large')) throw err;
            throw tooLarge(batch.revision);
          }
        },
        end: (err) => {
          watches.delete(id);
          const frame = err === undefined ? { t: 'watchEnd', id } : { t: 'watchEnd', id, error: { code: err.code, message: err.message } };
          if (started) reply(frame);
          else pending.push(frame);
        },
      });
      reply({ t: 'watchStarted', id, from: watch.from });
      started = true;
      for (const f of pending) reply(f);
      if (pending.some((f) => f['t'] === 'watchEnd')) return;
      // The flush may have closed the connection (a client not reading): then nobody is left to cancel it.
      if (conn.open) watches.set(id, watch.cancel);
      else watch.cancel();
    } catch (err) {
      if (!isKvError(err)) throw err;
      reply({ t: 'watchEnd', id, error: { code: err.code, message: err.message } });
    }
  }
}

function timeoutOf(frame: Frame): number | undefined {
  const t = frame['timeoutMs'];
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 1 || t > 600_000) throw new KvError('invalid-request', 'timeoutMs must be from 1 to 600000');
  return t;
}

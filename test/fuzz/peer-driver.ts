// The masters' peer port (/raft) and client port (/kv): connections with and without the
// cluster secret, carrying hellos, Raft-looking frames, KV requests and garbage. Each action
// is one connection, closed at the end.
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { makeCredential } from '@flotilla/wire';
import { encode } from './msgpack.ts';
import { Bytes, describeValue } from './spec.ts';
import type { PeerAction } from './gen-frames.ts';
import type { Ledger } from './ledger.ts';
import { normalize } from './agent-driver.ts';

const unpackr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface PeerTarget {
  readonly name: string;
  readonly host: string;
  readonly peerPort: number;
  readonly clientPort: number;
}

export interface PeerDriverOptions {
  readonly ledger: Ledger;
  readonly targets: () => readonly PeerTarget[];
  readonly alive: (name: string) => boolean;
  readonly secret: string;
  readonly exitedDuring: (master: string, from: number, to: number) => boolean;
}

function credential(a: PeerAction, secret: string): string | undefined {
  const name = /^[A-Za-z0-9._-]{1,128}$/.test(a.name) ? a.name : 'fz-peer';
  switch (a.auth) {
    case 'secret':
      return makeCredential(secret, name);
    case 'wrong-secret':
      return makeCredential('not-the-secret-0123456789', name);
    case 'stale':
      return makeCredential(secret, name, Date.now() - 10 * 60_000);
    case 'garbage':
      return 'v1.x.y.z.w';
    default:
      return undefined;
  }
}

export class PeerDriver {
  constructor(private readonly o: PeerDriverOptions) {}

  async run(a: PeerAction, origin: string): Promise<void> {
    const live = this.o.targets().filter((t) => this.o.alive(t.name));
    if (live.length === 0) return;
    const t = live[a.master % live.length]!;
    const L = this.o.ledger;
    const port = a.port === 'peer' ? t.peerPort : t.clientPort;
    const path = a.port === 'peer' ? '/raft' : '/kv';
    const cred = credential(a, this.o.secret);
    const channel = a.port === 'peer' ? 'peer' : 'kv';
    const flight = L.begin({ channel, master: t.name, family: channel, desc: `${path} as ${a.name} (${a.auth}): ${a.frames.map((f) => describeValue(f, 200)).join(' | ')}`, origin, payload: () => Buffer.concat(a.frames.map(bytesOf)) });
    L.counters.requests++;
    const ws = new WebSocket(`ws://${t.host}:${port}${path}`, { headers: cred === undefined ? {} : { 'x-flotilla-auth': cred }, maxPayload: 64 * 1024 * 1024, perMessageDeflate: false, handshakeTimeout: 10_000 });
    const result = await new Promise<string>((resolve) => {
      let opened = false;
      let closed = false;
      let replies = 0;
      const expect = new Set<number>();
      const timer = setTimeout(() => finish(opened ? (expect.size > 0 ? 'timeout' : 'done') : 'no handshake'), 15_000);
      const finish = (why: string): void => {
        clearTimeout(timer);
        try {
          ws.terminate();
        } catch {
          // gone
        }
        resolve(why);
      };
      ws.on('unexpected-response', (_req, res) => finish(`refused ${res.statusCode}`));
      ws.on('error', (err) => {
        if (!opened) finish(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      });
      ws.on('close', (code) => {
        closed = true;
        if (opened) finish(`closed ${code}`);
      });
      ws.on('message', (data) => {
        replies++;
        let f: Record<string, unknown> | undefined;
        try {
          f = unpackr.unpack(data as Buffer) as Record<string, unknown>;
        } catch {
          return;
        }
        if (typeof f?.['id'] === 'number') expect.delete(f['id']);
        if (f?.['t'] === 'res' && f['ok'] === false) {
          const e = f['error'] as { code?: string; message?: string } | undefined;
          if (e?.code === 'internal' || /internal error/.test(String(e?.message))) {
            L.counters.server_errors++;
            L.finding('server-error', channel, normalize(e?.message), { response: `KV error ${e?.code}: ${String(e?.message).slice(0, 300)}` }, flight);
          }
        }
        if (expect.size === 0 && replies > 0 && sentAll) finish('answered');
      });
      let sentAll = false;
      ws.on('open', async () => {
        opened = true;
        if (a.auth !== 'secret') {
          L.finding('auth', channel, a.auth, { detail: `${path} accepted a connection with ${a.auth === 'none' ? 'no credential' : `a ${a.auth} credential`}` }, flight);
        }
        for (const f of a.frames) {
          if (closed) break;
          const isReq = typeof f === 'object' && f !== null && !(f instanceof Bytes) && !(f instanceof Uint8Array) && ((f as { t?: unknown }).t === 'req' || (f as { t?: unknown }).t === 'watch') && typeof (f as { id?: unknown }).id === 'number';
          if (isReq) expect.add((f as { id: number }).id);
          try {
            if (typeof f === 'string') ws.send(f, { binary: false });
            else ws.send(bytesOf(f), { binary: true }, () => undefined);
          } catch {
            break;
          }
          L.counters[a.port === 'peer' ? 'peer_frames' : 'kv_frames']++;
          await new Promise((r) => setTimeout(r, 20));
        }
        sentAll = true;
        if (expect.size === 0) setTimeout(() => finish(replies > 0 ? 'answered' : closed ? 'closed' : 'done'), 1000);
      });
    });
    if (result === 'timeout') {
      L.counters.unanswered++;
      L.end(flight, result);
      L.finding('unanswered', channel, 'timeout', { detail: `a ${path} request got no answer within 15 s` }, flight);
      return;
    }
    if ((result === 'no handshake' || result.startsWith('error')) && !this.o.exitedDuring(t.name, flight.started, Date.now() + 1000)) {
      L.end(flight, result);
      return;
    }
    L.counters.answered++;
    L.end(flight, result);
  }
}

function bytesOf(f: unknown): Buffer {
  if (f instanceof Bytes) return f.materialize();
  if (f instanceof Uint8Array) return Buffer.from(f);
  if (typeof f === 'string') return Buffer.from(f);
  return encode(f);
}

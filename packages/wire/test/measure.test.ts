// measureFrame: what a received frame declares, read from its headers before it is decoded
// (issue 12: a frame of a million tiny values held a master's event loop for the whole decode).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { AUTH_HEADER, CLOSE, MAX_FRAME_DEPTH, WireServer, decodeFrame, makeCredential, measureFrame, secretAuthenticator, silentLogger } from '@flotilla/wire';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Values as measureFrame counts them: each value, and for a map its keys too. */
function count(v: unknown): number {
  if (v instanceof Uint8Array || typeof v !== 'object' || v === null) return 1;
  if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => n + count(x), 0);
  return 1 + Object.entries(v).reduce((n, [, x]) => n + 1 + count(x), 0);
}

/** Maps and lists holding something, one inside another (an empty one holds no level). */
function depth(v: unknown): number {
  if (v instanceof Uint8Array || typeof v !== 'object' || v === null) return 0;
  const items = Array.isArray(v) ? v : Object.values(v);
  return items.length === 0 ? 0 : 1 + Math.max(0, ...items.map(depth));
}

const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 40 }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 40 }),
      // every length class: 8-, 16- and 32-bit lengths of strings and binaries
      fc.constantFrom(31, 32, 255, 256, 65_535, 65_536, 70_000).map((n) => 'é'.repeat(Math.ceil(n / 2))),
      fc.constantFrom(255, 256, 65_535, 65_536, 70_000).map((n) => new Uint8Array(n)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map((b) => (b >= -(2n ** 53n) && b <= 2n ** 53n ? Number(b) : b))),
    fc.array(tie('v'), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 20 }),
  ),
})).v;

test('property: measureFrame counts exactly what the frame holds and how deep it nests', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 6 }), (frame) => {
      const bytes = packr.pack(frame);
      const n = count(frame);
      assert.equal(measureFrame(bytes, n, 1000), undefined, 'its own count passes');
      assert.match(measureFrame(bytes, n - 1, 1000) ?? (n === 1 ? 'declares more than' : 'accepted'), /declares more than/, `one fewer (${n - 1}) is refused`);
      const d = depth(frame);
      assert.equal(measureFrame(bytes, Infinity, d), undefined);
      if (d > 1) assert.match(measureFrame(bytes, Infinity, d - 1) ?? 'accepted', /nests more than/);
    }),
    { numRuns: 300 },
  );
});

test('a frame that only declares a huge map or list is refused from its header, before decoding', () => {
  const liar = Buffer.from([0x81, 0xa1, 0x78, 0xdd, 0xff, 0xff, 0xff, 0xff]); // {x: array32 of 4,294,967,295}
  assert.match(measureFrame(liar, 1000, MAX_FRAME_DEPTH)!, /declares more than 1000 values/);
  assert.throws(() => decodeFrame(liar, 1000), (e: Error & { code?: string }) => e.code === 'frame-too-large');
  const deep = Buffer.concat([Buffer.from([0x81, 0xa1, 0x78]), Buffer.alloc(10_000, 0x91), Buffer.from([0x01])]);
  assert.match(measureFrame(deep, Infinity, MAX_FRAME_DEPTH)!, /nests more than 128 levels/);
});

test('a connection with maxFrameValues closes with 1009 on a frame of too many values; others are served', async () => {
  const frames: unknown[] = [];
  const s = await WireServer.listen('127.0.0.1', 0, { authenticate: secretAuthenticator('measure-secret-0123456789'), maxFrameBytes: 1 << 24, maxFrameValues: 10_000, maxBufferedBytes: 1 << 24, heartbeatMs: 0, logger: silentLogger }, (conn) => conn.on('frame', (f) => frames.push(f)));
  try {
    const url = `ws://127.0.0.1:${s.address().port}/`;
    const dial = async () => {
      const ws = new WebSocket(url, { headers: { [AUTH_HEADER]: makeCredential('measure-secret-0123456789', 't') } });
      await once(ws, 'open');
      return ws;
    };
    const many: Record<string, number> = {};
    for (let i = 0; i < 20_000; i++) many[`k${i}`] = i;
    const bad = await dial();
    const closed = once(bad, 'close');
    bad.send(packr.pack({ t: 'req', body: many }));
    const [code, reason] = (await closed) as [number, Buffer];
    assert.equal(code, CLOSE.tooBig);
    assert.match(reason.toString(), /declares more than 10000 values/);
    const good = await dial();
    good.send(packr.pack({ t: 'req', body: { a: 1 } }));
    while (frames.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(frames, [{ t: 'req', body: { a: 1 } }]);
    good.close();
  } finally {
    await s.close();
  }
});

// Snapshots encoded a piece at a time (pieces.ts): the same bytes as packing and sealing in one
// step, which held every master's event loop for 800 ms at 50 MB (3.8 s at 150 MB).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { encodeSnapshot, encodeSnapshotAsync } from '../src/codec.ts';
import { seal } from '../src/integrity.ts';
import { packPieces, sealPieces } from '../src/pieces.ts';

const packr = new Packr({ useRecords: false, moreTypes: false });

const value = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 20 }), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 20 }), fc.constantFrom(255, 65_535, 65_536, 70_000, 200_000).map((n) => new Uint8Array(n).fill(7))),
    fc.array(tie('v'), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 20 }),
    // long lists and large maps, past the 15-item fix forms and the 64 KiB piece size
    fc.integer({ min: 15, max: 70_000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
    fc.integer({ min: 15, max: 20 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, new Uint8Array(5_000)]))),
  ),
})).v;

test('property: pieces sealed are byte for byte what packing and sealing in one step make', async () => {
  await fc.assert(
    fc.asyncProperty(value, fc.integer({ min: 0, max: 255 }), async (v, kind) => {
      const whole = seal(kind, packr.pack(v));
      const pieces = await sealPieces(kind, await packPieces(packr, v));
      assert.ok(Buffer.from(pieces).equals(Buffer.from(whole)));
    }),
    { numRuns: 200 },
  );
});

test('a 50 MB state is encoded with the event loop let in along the way, to the same bytes', async () => {
  const keys: unknown[] = [];
  for (let i = 0; i < 36; i++) keys.push([`/registry/events/ns/big-${i}`, [{ createRevision: i, modRevision: i, version: 1, value: new Uint8Array(1.4 * 1024 * 1024).fill(97) }]]);
  for (let i = 0; i < 20_000; i++) keys.push([`/registry/pods/ns/p-${i}`, [{ createRevision: i, modRevision: i, version: 1, value: new Uint8Array(300).fill(97) }]]);
  const state = { kv: { version: 1, revision: 20_036, keys, history: [] }, members: [['m1', { peerUrl: 'ws://x' }]], clusterId: 'c' };
  let turns = 0;
  let running = true;
  const spin = (): void => {
    turns++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  const data = await encodeSnapshotAsync(state);
  running = false;
  assert.ok(turns >= 2, `the event loop ran ${turns} times while 50 MB were encoded`);
  assert.ok(Buffer.from(data).equals(Buffer.from(encodeSnapshot(state))));
});

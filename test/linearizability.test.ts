// The linearizability checker must accept what is linearizable and reject what is not; it is
// the judge of the chaos tests, so it is tested on small hand-made histories first, then on
// random histories of a real register (always linearizable) and corrupted copies of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkHistory, checkRegister, type Operation } from './support/linearizability.ts';

const w = (client: number, value: string, call: number, ret: number, key = 'k'): Operation => ({ client, key, kind: 'write', value, call, ret });
const r = (client: number, value: string | null, call: number, ret: number, key = 'k'): Operation => ({ client, key, kind: 'read', value, call, ret });

test('hand-made histories that are linearizable', () => {
  const cases: [string, Operation[]][] = [
    ['empty', []],
    ['read of a missing key', [r(1, null, 0, 1)]],
    ['write then read', [w(1, 'a', 0, 1), r(2, 'a', 2, 3)]],
    ['a read concurrent with a write may see either value', [w(1, 'a', 0, 10), r(2, null, 1, 2), r(3, 'a', 3, 4)]],
    ['two concurrent writes, reads agree on one order', [w(1, 'a', 0, 10), w(2, 'b', 0, 10), r(3, 'b', 11, 12), r(3, 'b', 13, 14)]],
    ['an unknown write may take effect late', [w(1, 'a', 0, 1), w(2, 'b', 2, Infinity), r(3, 'a', 5, 6), r(3, 'b', 7, 8)]],
    ['an unknown write may never show', [w(1, 'a', 0, 1), w(2, 'b', 2, Infinity), r(3, 'a', 5, 6)]],
  ];
  for (const [name, history] of cases) assert.equal(checkRegister(history), undefined, name);
});

test('hand-made histories that are not linearizable', () => {
  const cases: [string, Operation[]][] = [
    ['a read misses a completed write', [w(1, 'a', 0, 1), r(2, null, 2, 3)]],
    ['a stale read after a newer write completed', [w(1, 'a', 0, 1), w(1, 'b', 2, 3), r(2, 'a', 4, 5)]],
    ['a value nobody wrote', [w(1, 'a', 0, 1), r(2, 'z', 2, 3)]],
    ['reads see two writes in opposite orders', [w(1, 'a', 0, 10), w(2, 'b', 0, 10), r(3, 'a', 11, 12), r(4, 'b', 13, 14), r(3, 'a', 15, 16)]],
    ['a value goes back after an unknown write showed', [w(1, 'a', 0, 1), w(2, 'b', 2, Infinity), r(3, 'b', 5, 6), r(3, 'a', 7, 8)]],
  ];
  for (const [name, history] of cases) assert.notEqual(checkRegister(history), undefined, name);
});

test('keys are checked independently; a failure names its key', () => {
  const ok = [w(1, 'a', 0, 1, 'x'), r(2, 'a', 2, 3, 'x'), w(1, 'b', 0, 1, 'y'), r(2, 'b', 2, 3, 'y')];
  assert.deepEqual(checkHistory(ok), { ok: true, keys: 2, operations: 4 });
  const bad = [...ok, r(3, null, 4, 5, 'y')];
  const result = checkHistory(bad);
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.key, 'y');
});

/** Random histories of a real register: each operation takes effect at one instant in its interval. */
const realHistory = fc
  .array(fc.record({ client: fc.nat({ max: 5 }), write: fc.boolean(), start: fc.nat({ max: 1000 }), length: fc.integer({ min: 1, max: 200 }), at: fc.double({ min: 0, max: 1, noNaN: true }), unknown: fc.boolean() }), { minLength: 1, maxLength: 40 })
  .map((specs) => {
    const ops = specs.map((s, i) => ({ ...s, i, effect: s.start + s.at * s.length }));
    let state: string | null = null;
    const out: Operation[] = [];
    for (const o of [...ops].sort((a, b) => a.effect - b.effect)) {
      if (o.write) {
        state = `v${o.i}`;
        out.push(w(o.client, state, o.start, o.unknown ? Infinity : o.start + o.length));
      } else {
        out.push(r(o.client, state, o.start, o.start + o.length));
      }
    }
    return out;
  });

test('random histories of a real register are accepted (fast-check)', () => {
  fc.assert(fc.property(realHistory, (history) => checkRegister(history) === undefined), { numRuns: 300 });
});

test('corrupting one read of such a history is caught when no order explains it (fast-check)', () => {
  let caught = 0;
  fc.assert(
    fc.property(realHistory, fc.nat(), (history, pick) => {
      const reads = history.map((o, i) => [o, i] as const).filter(([o]) => o.kind === 'read');
      if (reads.length === 0) return true;
      const [read, at] = reads[pick % reads.length]!;
      // A value that was never written cannot be explained by any order.
      const corrupted = history.map((o, i) => (i === at ? { ...read, value: 'never-written' } : o));
      if (checkRegister(corrupted) === undefined) return false;
      caught++;
      return true;
    }),
    { numRuns: 300 },
  );
  assert.ok(caught > 100, `caught ${caught} corrupted histories`);
});

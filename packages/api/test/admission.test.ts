// Fair seats (admission.ts): one user's flood waits behind itself, queues are bounded in
// length and in time, and everything is given back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Admission, DEFAULT_ADMISSION } from '../src/http/admission.ts';

describe('fair seats', () => {
  test('a user flooding the master waits behind itself: a freed seat goes to the other user that waits', async () => {
    const adm = new Admission({ ...DEFAULT_ADMISSION, reads: 2, queuePerUser: 2, queueWaitMs: 60_000 });
    const r1 = await adm.seat('reads', 'flood');
    const r2 = await adm.seat('reads', 'flood');
    const order: string[] = [];
    const f3 = adm.seat('reads', 'flood').then((r) => (order.push('flood'), r));
    const f4 = adm.seat('reads', 'flood').then((r) => (order.push('flood'), r));
    await assert.rejects(adm.seat('reads', 'flood'), (e: Error & { code?: number }) => e.code === 429 && /2 more of yours are waiting \(the bound per user\)/.test(e.message));
    const other = adm.seat('reads', 'quiet').then((r) => (order.push('quiet'), r));
    r1();
    await new Promise((r) => setImmediate(r));
    // With someone else waiting, flood (holding 1 of 2 = half) may not take the freed seat.
    assert.deepEqual(order, ['quiet']);
    r2();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['quiet', 'flood']);
    (await other)();
    (await f3)();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['quiet', 'flood', 'flood']);
    (await f4)();
    assert.deepEqual(adm.usage(), { reads: 0, changes: 0, waiting: 0, longRunning: 0 });
  });

  test('a request that waits longer than the queue wait gets 429', async () => {
    const adm = new Admission({ ...DEFAULT_ADMISSION, changes: 1, queueWaitMs: 20 });
    const held = await adm.seat('changes', 'u');
    await assert.rejects(adm.seat('changes', 'v'), (e: Error & { code?: number }) => e.code === 429 && /none was free within 20 ms/.test(e.message));
    held();
    (await adm.seat('changes', 'v'))();
  });
});

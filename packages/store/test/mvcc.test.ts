// The MVCC state machine on its own: revisions, ranges, transactions, leases, compaction,
// watch history, sessions and snapshots.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { KvError, MvccStore, boundsOf, type ApplyOutcome, type Command, type WriteRequest } from '@flotilla/store';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function apply(store: MvccStore, request: WriteRequest): ApplyOutcome {
  return store.applyCommand({ request });
}
// Loosely typed on purpose: each test knows which response shape it asked for.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function ok(outcome: ApplyOutcome): any {
  if (!outcome.ok) assert.fail(`${outcome.code}: ${outcome.message}`);
  return outcome.response;
}
function values(store: MvccStore, key: string, opts: object = {}): Record<string, string> {
  return Object.fromEntries(store.range({ key, ...opts }).kvs.map((kv) => [kv.key, dec(kv.value)]));
}

describe('revisions and reads', () => {
  test('every change gets the next revision; versions count puts; reads see any retained revision', () => {
    const s = new MvccStore();
    assert.equal(s.revision, 1);
    assert.equal(ok(apply(s, { type: 'put', key: 'a', value: enc('1') })).revision, 2);
    assert.equal(ok(apply(s, { type: 'put', key: 'a', value: enc('2') })).revision, 3);
    assert.equal(ok(apply(s, { type: 'put', key: 'b', value: enc('x') })).revision, 4);
    const [a] = s.range({ key: 'a' }).kvs;
    assert.deepEqual({ ...a, value: dec(a!.value) }, { key: 'a', value: '2', createRevision: 2, modRevision: 3, version: 2, lease: 0 });
    assert.deepEqual(values(s, 'a', { revision: 2 }), { a: '1' });
    assert.deepEqual(values(s, 'b', { revision: 3 }), {}, 'b did not exist yet');
    assert.throws(() => s.range({ key: 'a', revision: 9 }), (e: unknown) => e instanceof KvError && e.code === 'future-revision');
    // Deleting nothing changes nothing, not even the revision.
    assert.equal(ok(apply(s, { type: 'deleteRange', key: 'zzz' })).deleted, 0);
    assert.equal(s.revision, 4);
    const del = ok(apply(s, { type: 'deleteRange', key: 'a', prevKv: true }));
    assert.equal(del.revision, 5);
    assert.equal(dec(del.prevKvs[0].value), '2');
    ok(apply(s, { type: 'put', key: 'a', value: enc('again') }));
    const [again] = s.range({ key: 'a' }).kvs;
    assert.equal(again!.version, 1, 'a re-created key starts over');
    assert.equal(again!.createRevision, 6);
  });

  test('ranges: exact key, prefix, [key, end), limit with count and more, keys only, count only', () => {
    const s = new MvccStore();
    for (const k of ['/pods/a', '/pods/b', '/pods/c', '/podsx', '/svc/a']) ok(apply(s, { type: 'put', key: k, value: enc(k) }));
    assert.deepEqual(Object.keys(values(s, '/pods/', { prefix: true })), ['/pods/a', '/pods/b', '/pods/c']);
    assert.deepEqual(Object.keys(values(s, '/pods/b', { end: '/svc' })), ['/pods/b', '/pods/c', '/podsx']);
    assert.deepEqual(Object.keys(values(s, '', { prefix: true })).length, 5, 'the empty prefix is every key');
    const page = s.range({ key: '/pods/', prefix: true, limit: 2 });
    assert.deepEqual(page.kvs.map((kv) => kv.key), ['/pods/a', '/pods/b']);
    assert.equal(page.count, 3);
    assert.equal(page.more, true);
    assert.equal(s.range({ key: '/pods/a', keysOnly: true }).kvs[0]!.value.byteLength, 0);
    const counted = s.range({ key: '/', prefix: true, countOnly: true });
    assert.deepEqual([counted.kvs.length, counted.count], [0, 5]);
    assert.throws(() => boundsOf({ key: 'b', end: 'a' }), (e: unknown) => e instanceof KvError && e.code === 'invalid-request');
  });

  test('a range agrees with a simple model after random puts and deletes (fast-check)', () => {
    const keys = fc.constantFrom('a', 'ab', 'abc', 'b', 'ba', 'c');
    const op = fc.oneof(fc.record({ t: fc.constant('put' as const), k: keys, v: fc.string({ maxLength: 3 }) }), fc.record({ t: fc.constant('del' as const), k: keys, prefix: fc.boolean() }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), keys, fc.boolean(), (ops, q, prefix) => {
        const s = new MvccStore();
        const model = new Map<string, string>();
        for (const o of ops) {
          if (o.t === 'put') {
            apply(s, { type: 'put', key: o.k, value: enc(o.v) });
            model.set(o.k, o.v);
          } else {
            apply(s, { type: 'deleteRange', key: o.k, prefix: o.prefix });
            for (const k of [...model.keys()]) if (o.prefix ? k.startsWith(o.k) : k === o.k) model.delete(k);
          }
        }
        const want = [...model].filter(([k]) => (prefix ? k.startsWith(q) : k === q)).sort(([x], [y]) => (x < y ? -1 : 1));
        assert.deepEqual(Object.entries(values(s, q, { prefix })), want);
      }),
    );
  });
});

describe('transactions', () => {
  test('compare on value, version, create and mod revision picks the branch; both sides are atomic', () => {
    const s = new MvccStore();
    ok(apply(s, { type: 'put', key: 'k', value: enc('v1') }));
    const cas = (expected: number) =>
      ok(
        apply(s, {
          type: 'txn',
          compare: [{ key: 'k', target: 'modRevision', result: 'equal', value: expected }],
          success: [{ op: 'put', key: 'k', value: enc(`after-${expected}`) }, { op: 'range', key: 'k' }],
          failure: [{ op: 'range', key: 'k' }],
        }),
      );
    const won = cas(2);
    assert.equal(won.succeeded, true);
    assert.equal(dec(won.responses[1].kvs[0].value), 'after-2', 'a read in the transaction sees its own write');
    assert.equal(won.revision, 3);
    const lost = cas(2);
    assert.equal(lost.succeeded, false);
    assert.equal(lost.revision, 3, 'a failed comparison with only reads writes nothing');
    const missing = ok(apply(s, { type: 'txn', compare: [{ key: 'nope', target: 'version', result: 'equal', value: 0 }], success: [{ op: 'put', key: 'nope', value: enc('created') }], failure: [] }));
    assert.equal(missing.succeeded, true, 'a missing key has version 0');
    const byValue = ok(apply(s, { type: 'txn', compare: [{ key: 'k', target: 'value', result: 'equal', value: enc('after-2') }], success: [], failure: [] }));
    assert.equal(byValue.succeeded, true);
  });

  test('a refused transaction changes nothing', () => {
    const s = new MvccStore();
    ok(apply(s, { type: 'put', key: 'a', value: enc('1') }));
    const before = JSON.stringify(s.toSnapshot().keys);
    const dup = apply(s, { type: 'txn', compare: [], success: [{ op: 'put', key: 'b', value: enc('x') }, { op: 'put', key: 'b', value: enc('y') }], failure: [] });
    assert.equal(dup.ok, false);
    const lease = apply(s, { type: 'txn', compare: [], success: [{ op: 'put', key: 'c', value: enc('x') }, { op: 'put', key: 'd', value: enc('y'), lease: 99 }], failure: [] });
    assert.ok(!lease.ok && lease.code === 'lease-not-found');
    const overlap = apply(s, { type: 'txn', compare: [], success: [{ op: 'put', key: 'a2', value: enc('x') }, { op: 'deleteRange', key: 'a', prefix: true }], failure: [] });
    assert.equal(overlap.ok, false);
    assert.equal(JSON.stringify(s.toSnapshot().keys), before);
    assert.equal(s.revision, 2);
  });

  test('a range in a transaction reads at the revision it names, or is refused when that is compacted', () => {
    const s = new MvccStore();
    const r1 = ok(apply(s, { type: 'put', key: 'k', value: enc('one') })).revision;
    ok(apply(s, { type: 'put', key: 'k', value: enc('two') }));
    const read = ok(apply(s, { type: 'txn', compare: [], success: [{ op: 'range', key: 'k', revision: r1 }, { op: 'range', key: 'k' }], failure: [] }));
    assert.equal(dec(read.responses[0].kvs[0].value), 'one');
    assert.equal(dec(read.responses[1].kvs[0].value), 'two');
    ok(apply(s, { type: 'compact', revision: s.revision }));
    const old = apply(s, { type: 'txn', compare: [], success: [{ op: 'put', key: 'x', value: enc('1') }, { op: 'range', key: 'k', revision: r1 }], failure: [] });
    assert.ok(!old.ok && old.code === 'compacted');
    const future = apply(s, { type: 'txn', compare: [], success: [{ op: 'range', key: 'k', revision: 99 }], failure: [] });
    assert.ok(!future.ok && future.code === 'future-revision');
    assert.equal(s.range({ key: 'x' }).count, 0, 'the refused transaction wrote nothing');
  });
});

describe('leases', () => {
  test('keys attached to a lease go when it is revoked, in one revision', () => {
    const s = new MvccStore();
    const { id } = ok(apply(s, { type: 'leaseGrant', ttl: 10 }));
    ok(apply(s, { type: 'put', key: 'x', value: enc('1'), lease: id }));
    ok(apply(s, { type: 'put', key: 'y', value: enc('2'), lease: id }));
    ok(apply(s, { type: 'put', key: 'z', value: enc('3') }));
    ok(apply(s, { type: 'put', key: 'y', value: enc('detached') })); // a put without the lease detaches it
    assert.deepEqual(s.leaseKeys(id), ['x']);
    const revoked = ok(apply(s, { type: 'leaseRevoke', id }));
    assert.equal(revoked.deleted, 1);
    assert.deepEqual(Object.keys(values(s, '', { prefix: true })), ['y', 'z']);
    assert.equal(s.leaseTtl(id), undefined);
    const gone = apply(s, { type: 'leaseKeepAlive', id });
    assert.ok(!gone.ok && gone.code === 'lease-not-found');
    const badPut = apply(s, { type: 'put', key: 'w', value: enc('1'), lease: id });
    assert.ok(!badPut.ok && badPut.code === 'lease-not-found');
    assert.equal(apply(s, { type: 'leaseGrant', ttl: 0 }).ok, false);
  });
});

describe('compaction and watch history', () => {
  test('history replays every change in order from a revision; compacted revisions are refused clearly', () => {
    const s = new MvccStore();
    for (let i = 1; i <= 5; i++) ok(apply(s, { type: 'put', key: `k${i % 2}`, value: enc(`${i}`) }));
    ok(apply(s, { type: 'deleteRange', key: 'k0' }));
    const all = s.eventsSince(2, boundsOf({ key: 'k', prefix: true }));
    assert.deepEqual(all.map((b) => b.revision), [2, 3, 4, 5, 6, 7]);
    assert.deepEqual(all.flatMap((b) => b.events.map((e) => `${e.type}:${e.kv.key}@${e.kv.modRevision}`)), ['put:k1@2', 'put:k0@3', 'put:k1@4', 'put:k0@5', 'put:k1@6', 'delete:k0@7']);
    assert.deepEqual(s.eventsSince(5, boundsOf({ key: 'k1' })).map((b) => b.revision), [6]);
    ok(apply(s, { type: 'compact', revision: 5 }));
    assert.throws(() => s.eventsSince(4, boundsOf({ key: 'k1' })), (e: unknown) => e instanceof KvError && e.code === 'compacted' && /start at 5 or later/.test(e.message));
    assert.throws(() => s.range({ key: 'k1', revision: 4 }), (e: unknown) => e instanceof KvError && e.code === 'compacted');
    assert.deepEqual(values(s, 'k1', { revision: 5 }), { k1: '3' }, 'the state at the compaction revision is kept');
    assert.deepEqual(values(s, 'k0', { revision: 6 }), { k0: '4' });
    assert.deepEqual(values(s, 'k0'), {}, 'deleted');
    const again = apply(s, { type: 'compact', revision: 5 });
    assert.ok(!again.ok && again.code === 'compacted');
  });
});

describe('sessions, determinism, snapshots', () => {
  test('a retried write of a session is applied once and answered with the first response', () => {
    const s = new MvccStore();
    const cmd = (seq: number, firstUnacked: number, value: string): Command => ({ session: { client: 'c1', seq, firstUnacked }, request: { type: 'put', key: 'k', value: enc(value), prevKv: true } });
    const first = s.applyCommand(cmd(1, 1, 'a'));
    const retry = s.applyCommand(cmd(1, 1, 'a'));
    assert.deepEqual(retry, first);
    assert.equal(s.revision, 2, 'applied once');
    s.applyCommand(cmd(2, 2, 'b')); // the client saw the answer to 1
    const late = s.applyCommand(cmd(1, 1, 'a'));
    assert.ok(!late.ok && late.code === 'invalid-request', 'a retry of an acknowledged request is refused');
    assert.equal(dec(s.range({ key: 'k' }).kvs[0]!.value), 'b');
  });

  test('a write fenced to a term is applied only in that term, and a retry gets the same answer', () => {
    const s = new MvccStore();
    const put = (seq: number, fence: number, term: number): ApplyOutcome => s.applyCommand({ session: { client: 'ctl', seq, firstUnacked: seq }, request: { type: 'put', key: 'k', value: enc(`v${seq}`) }, fence }, term);
    assert.ok(put(1, 3, 3).ok);
    const late = put(2, 3, 4);
    assert.ok(!late.ok && late.code === 'fenced', 'written for term 3, reached the log in term 4');
    assert.match((late as { message: string }).message, /leadership of term 3, but reached the log in term 4/);
    assert.deepEqual(put(2, 3, 4), late);
    assert.equal(dec(s.range({ key: 'k' }).kvs[0]!.value), 'v1', 'the fenced write changed nothing');
    assert.ok(!s.applyCommand({ request: { type: 'put', key: 'k', value: enc('x') }, fence: -1 }, 1).ok, 'a malformed fence is refused');
  });

  test('a session the store has forgotten is refused with session-expired, never applied twice', () => {
    const s = new MvccStore();
    const put = (client: string, seq: number, firstUnacked: number, value: string): ApplyOutcome => s.applyCommand({ session: { client, seq, firstUnacked }, request: { type: 'put', key: `k/${client}`, value: enc(value) } });
    assert.ok(put('old', 1, 1, 'a').ok);
    assert.ok(put('old', 2, 1, 'b').ok); // 2 applied; its answer is lost, so the client will retry it
    // Ten thousand other clients write: the least recently used session, 'old', is forgotten.
    for (let i = 0; i < 10_000; i++) assert.ok(put(`c${i}`, 1, 1, 'x').ok);
    const revision = s.revision;
    const retry = put('old', 2, 2, 'b');
    assert.ok(!retry.ok && retry.code === 'session-expired', 'the retry is refused, not run again');
    assert.match(retry.message, /no longer remembers the session/);
    assert.equal(s.revision, revision, 'nothing was applied');
    // A new session (request 1 outstanding) is accepted; so are sessions still remembered.
    assert.ok(put('fresh', 1, 1, 'y').ok);
    assert.deepEqual(put('c9999', 1, 1, 'x'), { ok: true, response: { revision: revision } }, 'a remembered session gets its first answer');
  });

  test('a store rebuilt from its snapshot answers and continues exactly like the original', () => {
    const s = new MvccStore();
    const { id } = ok(apply(s, { type: 'leaseGrant', ttl: 5 }));
    ok(apply(s, { type: 'put', key: 'a', value: enc('1'), lease: id }));
    ok(apply(s, { type: 'put', key: 'b', value: enc('2') }));
    s.applyCommand({ session: { client: 'c', seq: 1, firstUnacked: 1 }, request: { type: 'put', key: 'b', value: enc('3') } });
    s.noteApplied(1, 1, enc('x'));
    const copy = MvccStore.fromSnapshot(s.toSnapshot());
    assert.equal(copy.appliedHash, s.appliedHash);
    for (const store of [s, copy]) {
      assert.deepEqual(store.applyCommand({ session: { client: 'c', seq: 1, firstUnacked: 1 }, request: { type: 'put', key: 'b', value: enc('3') } }), { ok: true, response: { revision: 4 } });
      ok(apply(store, { type: 'leaseRevoke', id }));
    }
    assert.deepEqual(copy.toSnapshot(), s.toSnapshot());
  });

  test('the applied digest depends on every entry and its order', () => {
    const a = new MvccStore();
    const b = new MvccStore();
    a.noteApplied(1, 1, enc('x'));
    a.noteApplied(2, 1, enc('y'));
    b.noteApplied(1, 1, enc('y'));
    b.noteApplied(2, 1, enc('x'));
    assert.notEqual(a.appliedHash, b.appliedHash);
  });

  test('a malformed command in the log is refused and changes nothing, instead of stopping the apply loop', () => {
    const s = new MvccStore();
    ok(apply(s, { type: 'put', key: 'k', value: enc('v') }));
    const before = s.toSnapshot();
    const poison: unknown[] = [
      { type: 'txn', compare: [null], success: [], failure: [] },
      { type: 'txn', compare: [], success: [null], failure: [] },
      { type: 'txn', compare: [], success: [{ op: 'put', key: 'k', value: enc('x') }, { op: 'put' }], failure: [] },
      { type: 'deleteRange', key: 'a', prefix: true, end: 5 },
      { type: 'put', key: 'a', value: enc('1'), lease: 'x' },
      { type: 'put', key: 7, value: enc('1') },
      { type: 'launch-missiles' },
    ];
    for (const request of poison) {
      const out = s.applyCommand({ request: request as WriteRequest });
      assert.ok(!out.ok, `${JSON.stringify(request)} is refused`);
      assert.match(out.message, /malformed command/);
    }
    const badSession = s.applyCommand({ session: { client: '', seq: -1, firstUnacked: 0 }, request: { type: 'put', key: 'k', value: enc('y') } } as Command);
    assert.ok(!badSession.ok);
    assert.deepEqual(s.toSnapshot(), before, 'nothing changed');
    ok(apply(s, { type: 'put', key: 'k', value: enc('after') }));
  });
});

describe('size (what the quota limits)', () => {
  /** Every kept version's key, value and fixed overhead, counted from scratch. */
  function counted(s: MvccStore): number {
    let n = 0;
    for (const [key, versions] of s.toSnapshot().keys) for (const v of versions) n += key.length + (v.kv?.value.byteLength ?? 0) + 64;
    return n;
  }

  test('the size follows puts, deletes and compactions, and a snapshot copy agrees (fast-check against a recount)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ type: fc.constant('put' as const), key: fc.constantFrom('a', 'b', 'cc', 'ddd'), value: fc.uint8Array({ maxLength: 40 }) }),
            fc.record({ type: fc.constant('deleteRange' as const), key: fc.constantFrom('a', 'b', 'c'), prefix: fc.boolean() }),
            fc.record({ type: fc.constant('compact' as const), back: fc.nat({ max: 5 }) }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          const s = new MvccStore();
          for (const op of ops) {
            if (op.type === 'compact') {
              const revision = s.revision - op.back;
              if (revision > s.compactedRevision && revision >= 1) s.applyCommand({ request: { type: 'compact', revision } });
            } else s.applyCommand({ request: op });
            assert.equal(s.sizeBytes, counted(s));
          }
          assert.equal(MvccStore.fromSnapshot(s.toSnapshot()).sizeBytes, s.sizeBytes);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('deleting and compacting frees what puts took', () => {
    const s = new MvccStore();
    for (let i = 0; i < 10; i++) ok(apply(s, { type: 'put', key: `k${i}`, value: new Uint8Array(1000) }));
    const full = s.sizeBytes;
    assert.ok(full > 10_000);
    ok(apply(s, { type: 'deleteRange', key: 'k', prefix: true }));
    assert.ok(s.sizeBytes > full, 'a delete adds tombstones until compacted');
    ok(apply(s, { type: 'compact', revision: s.revision }));
    assert.equal(s.sizeBytes, 0);
  });
});

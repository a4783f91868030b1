// The small pieces on their own: quorum arithmetic against a brute-force reference, the
// in-flight window, progress states, storage, and the seeded random source.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MemoryStorage, RaftError, SeededRandom, type Entry } from '@flotilla/raft';
import { majority, quorumIndex, voteResult } from '../src/quorum.ts';
import { Inflights, Progress } from '../src/progress.ts';
import { ReadOnly } from '../src/readonly.ts';
import { bytes } from './harness.ts';

describe('quorum', () => {
  test('quorumIndex is the largest index a majority has reached (checked against brute force)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 20 }), { minLength: 1, maxLength: 9 }), (indexes) => {
        const voters = new Set(indexes.map((_, i) => `n${i}`));
        const got = quorumIndex(voters, (id) => indexes[Number(id.slice(1))]!);
        let want = 0;
        for (let i = 0; i <= 20; i++) if (indexes.filter((x) => x >= i).length >= majority(indexes.length)) want = i;
        assert.equal(got, want);
      }),
    );
  });

  test('voteResult: won with a majority of grants, lost once a majority is impossible, non-voters ignored', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 1, maxLength: 9 }), (votes) => {
        const voters = new Set(votes.map((_, i) => `n${i}`));
        const map = new Map<string, boolean>();
        votes.forEach((v, i) => v !== undefined && map.set(`n${i}`, v));
        map.set('outsider', true);
        const yes = votes.filter((v) => v === true).length;
        const open = votes.filter((v) => v === undefined).length;
        const q = majority(votes.length);
        const want = yes >= q ? 'won' : yes + open < q ? 'lost' : 'pending';
        assert.equal(voteResult(voters, map), want);
      }),
    );
  });
});

describe('flow control', () => {
  test('Inflights is a bounded FIFO window freed by acknowledgement', () => {
    const w = new Inflights(3);
    w.add(5);
    w.add(7);
    w.add(9);
    assert.equal(w.full(), true);
    assert.throws(() => w.add(11));
    w.freeLE(7);
    assert.equal(w.size(), 1);
    w.add(11);
    w.add(12);
    assert.equal(w.full(), true);
    w.freeFirstOne();
    assert.equal(w.size(), 2);
    w.freeLE(100);
    assert.equal(w.size(), 0);
  });

  test('Progress: probe sends one message at a time, replicate pipelines, stale rejections are ignored', () => {
    const pr = new Progress(11, 4, false);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(12, 2);
    assert.equal(pr.isPaused(), true, 'a probe waits for its answer');
    assert.equal(pr.maybeDecrTo(9, 5), false, 'a rejection of an older probe is stale');
    assert.equal(pr.maybeDecrTo(10, 5), true);
    assert.equal(pr.next, 6, 'backs off to the hint + 1');
    assert.equal(pr.maybeUpdate(8), true);
    pr.becomeReplicate();
    assert.equal(pr.next, 9);
    for (let i = 0; i < 4; i++) pr.sentEntries(9 + i, 1);
    assert.equal(pr.isPaused(), true, 'the window of 4 is full');
    assert.equal(pr.next, 13, 'next moved optimistically');
    assert.equal(pr.maybeDecrTo(8, 0), false, 'a rejection at or below match answers an old message');
    assert.equal(pr.maybeDecrTo(11, 0), true);
    assert.equal(pr.next, 9, 'back to match + 1');
  });

  test('ReadOnly releases a read only when a majority acknowledged its round or a later one', () => {
    const r = new ReadOnly();
    const voters = new Set(['a', 'b', 'c']);
    r.add('r1', 10, 'a');
    r.add('r2', 11, 'a');
    assert.deepEqual(r.release(voters, 'a'), []);
    r.ack('b', 1);
    assert.deepEqual(r.release(voters, 'a').map((x) => x.ctx), ['r1']);
    r.ack('c', 2);
    assert.deepEqual(r.release(voters, 'a').map((x) => x.ctx), ['r2']);
    assert.equal(r.pendingCount(), 0);
  });
});

describe('MemoryStorage', () => {
  const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: bytes(`${index}`) });

  test('append replaces a conflicting suffix and refuses gaps', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.append([entry(2, 2)]);
    assert.equal(s.lastIndex(), 2);
    assert.equal(s.term(2), 2);
    assert.throws(() => s.append([entry(5, 2)]), (e: unknown) => e instanceof RaftError && e.code === 'invalid-state');
  });

  test('entries are limited by size but never empty, and compacted ranges are refused', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)]);
    assert.equal(s.entries(1, 5, 0).length, 1);
    assert.equal(s.entries(1, 5, Number.MAX_SAFE_INTEGER).length, 4);
    s.createSnapshot(2, { voters: ['a'], learners: [] }, bytes('img'));
    s.compact(2);
    assert.equal(s.firstIndex(), 3);
    assert.equal(s.term(2), 1, 'the compaction point keeps its term');
    assert.throws(() => s.entries(2, 4, 100), (e: unknown) => e instanceof RaftError && e.code === 'compacted');
    assert.throws(() => s.term(1), (e: unknown) => e instanceof RaftError && e.code === 'compacted');
    assert.throws(() => s.entries(3, 9, 100), (e: unknown) => e instanceof RaftError && e.code === 'unavailable');
  });

  test('bootstrap writes one committed addVoter entry per founder', () => {
    const s = MemoryStorage.bootstrap(['a', 'b']);
    assert.deepEqual(
      s.entries(1, 3, Infinity).map((e) => (e.type === 'confChange' ? e.change : undefined)),
      [{ type: 'addVoter', nodeId: 'a' }, { type: 'addVoter', nodeId: 'b' }],
    );
    assert.deepEqual(s.initialState().hardState, { term: 1, vote: '', commit: 2 });
    assert.throws(() => MemoryStorage.bootstrap(['a', 'a']), (e: unknown) => e instanceof RaftError && e.code === 'invalid-config');
  });
});

describe('SeededRandom', () => {
  test('the same seed gives the same stream; values stay in range and cover it', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const x = a.intn(10);
      assert.equal(x, b.intn(10));
      assert.ok(x >= 0 && x < 10);
      seen.add(x);
    }
    assert.equal(seen.size, 10);
    assert.notEqual(new SeededRandom(1).nextUint32(), new SeededRandom(2).nextUint32());
    assert.throws(() => a.intn(0), RangeError);
  });
});

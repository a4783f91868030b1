// step() given malformed or stale messages: a typed error or a silent ignore, never a crash,
// never a changed state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_TERM, RaftError, type Message } from '@flotilla/raft';
import { ELECTION, TestNet, bytes, type TestNode } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

/** Everything step() could corrupt, as one comparable value. */
function fingerprint(n: TestNode): string {
  const s = n.raw.status();
  return JSON.stringify({ ...s, progress: s.progress === undefined ? undefined : [...s.progress], terms: n.terms() });
}

function leaderNet(): TestNet {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  return net;
}

const valid: Message = { type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 5, readSeq: 0 };

const malformed: [string, unknown][] = [
  ['not an object', 'hello'],
  ['null', null],
  ['an array', [1, 2]],
  ['unknown type', { ...valid, type: 'gossip' }],
  ['missing term', { type: 'heartbeat', from: 'n1', to: 'n2', commit: 5, readSeq: 0 }],
  ['negative term', { ...valid, term: -1 }],
  ['fractional index', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 1.5, logTerm: 1, entries: [], commit: 0 }],
  ['term as a string', { ...valid, term: '2' }],
  ['empty sender', { ...valid, from: '' }],
  ['addressed to another node', { ...valid, to: 'n3' }],
  ['claims to come from the receiver', { ...valid, from: 'n2' }],
  ['entries not an array', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 5, logTerm: 2, entries: 'x', commit: 0 }],
  ['entries out of sequence', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 5, logTerm: 2, entries: [{ index: 7, term: 2, type: 'normal', data: bytes('x') }], commit: 0 }],
  ['entry term after the message term', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 5, logTerm: 2, entries: [{ index: 6, term: 9, type: 'normal', data: bytes('x') }], commit: 0 }],
  ['entry data not bytes', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 5, logTerm: 2, entries: [{ index: 6, term: 2, type: 'normal', data: 'x' }], commit: 0 }],
  ['unknown membership change', { type: 'append', from: 'n1', to: 'n2', term: 2, index: 5, logTerm: 2, entries: [{ index: 6, term: 2, type: 'confChange', change: { type: 'promote', nodeId: 'n4' } }], commit: 0 }],
  ['snapshot data not bytes', { type: 'snapshot', from: 'n1', to: 'n2', term: 2, metadata: { index: 9, term: 2, confState: { voters: ['n1'], learners: [] } }, offset: 0, data: [1, 2], done: true }],
  ['snapshot without membership', { type: 'snapshot', from: 'n1', to: 'n2', term: 2, metadata: { index: 9, term: 2 }, offset: 0, data: bytes('x'), done: true }],
  ['empty forwarded proposal', { type: 'propose', from: 'n3', to: 'n2', term: 2, proposals: [] }],
  ['vote without transfer flag', { type: 'vote', from: 'n3', to: 'n2', term: 3, index: 5, logTerm: 2 }],
  ['term beyond the largest a cluster uses', { ...valid, term: MAX_TERM + 1 }],
  ['term not a safe integer', { ...valid, term: 2 ** 53 }],
  ['snapshot chunk without a checksum', { type: 'snapshot', from: 'n1', to: 'n2', term: 2, metadata: { index: 9, term: 2, confState: { voters: ['n1'], learners: [] } }, offset: 0, data: bytes('x'), done: true }],
  ['a term far beyond ours (issue 11: heartbeat at 2^53 - 1)', { ...valid, term: Number.MAX_SAFE_INTEGER }],
];

test('malformed messages are rejected with RaftError invalid-message and change nothing', () => {
  for (const [name, m] of malformed) {
    const net = leaderNet();
    const n2 = net.node('n2');
    const before = fingerprint(n2);
    assert.throws(
      () => n2.raw.step(m as Message),
      (e: unknown) => e instanceof RaftError && e.code === 'invalid-message' && e.message.length > 0,
      name,
    );
    n2.flush();
    assert.equal(fingerprint(n2), before, `${name}: state unchanged`);
  }
});

test('on the leader: an acknowledgement beyond its log is rejected; one from a non-member is ignored', () => {
  const net = leaderNet();
  const n1 = net.node('n1');
  const before = fingerprint(n1);
  assert.throws(
    () => n1.raw.step({ type: 'appendResponse', from: 'n2', to: 'n1', term: 2, index: 99, reject: false, rejectHint: 0, logTerm: 0 }),
    (e: unknown) => e instanceof RaftError && e.code === 'invalid-message',
  );
  assert.equal(fingerprint(n1), before);
  n1.raw.step({ type: 'appendResponse', from: 'n9', to: 'n1', term: 2, index: 5, reject: false, rejectHint: 0, logTerm: 0 });
  n1.raw.step({ type: 'heartbeatResponse', from: 'n9', to: 'n1', term: 2, readSeq: 0, commit: 5 });
  n1.raw.step({ type: 'voteResponse', from: 'n9', to: 'n1', term: 2, reject: false, commit: 0, commitTerm: 0 });
  n1.flush();
  assert.equal(fingerprint(n1), before);
});

test('a heartbeat claiming a commit beyond our log is answered with where our log ends, and commits nothing', () => {
  // The leader never claims more than we acknowledged: we lost entries we had persisted.
  const net = leaderNet();
  const n2 = net.node('n2');
  const commit = n2.commit;
  n2.raw.step({ ...valid, commit: 99 });
  const out = n2.flush();
  assert.equal(n2.commit, commit, 'nothing committed');
  assert.deepEqual(
    out.map((m) => m.type === 'appendResponse' && [m.to, m.reject, m.rejectHint]),
    [['n1', true, n2.lastIndex]],
    'a rejection naming our real last index',
  );
});

test('a frame more than maxTermStep ahead is ignored: the receiver only moves its own term up by the step', () => {
  const net = leaderNet();
  const n2 = net.node('n2');
  const log = n2.terms();
  n2.raw.step({ type: 'append', from: 'n1', to: 'n2', term: 2 + 2 ** 20 + 5, index: 5, logTerm: 2, entries: [{ index: 6, term: 2 + 2 ** 20 + 5, type: 'normal', data: bytes('forged') }], commit: 6 });
  n2.flush();
  assert.equal(n2.term, 2 + 2 ** 20, 'one step up, not to the claimed term');
  assert.equal(n2.core.leader, '', 'the sender is not taken for leader');
  assert.deepEqual(n2.terms(), log, 'nothing appended');
});

test('a member that jumps a bounded step ahead is followed; the cluster elects again after it', () => {
  const net = leaderNet();
  // 1000 terms ahead is far, but possible for a member that campaigned alone for long
  // without pre-vote: it is believed, forces an election, and the cluster carries on.
  net.node('n2').raw.step({ type: 'heartbeat', from: 'n3', to: 'n2', term: 1002, commit: 0, readSeq: 0 });
  net.deliver(net.node('n2').flush());
  assert.equal(net.node('n2').term, 1002);
  const top = (): number => Math.max(...[...net.nodes.values()].map((n) => n.term));
  for (let i = 0; i < 10 * ELECTION && net.leader()?.term !== top(); i++) net.tickAll();
  const leader = net.leader();
  assert.ok(leader !== undefined && leader.term >= 1002, `a leader at term ${leader?.term}`);
  net.propose(leader.id, 'after');
  assert.ok(net.node('n1').appliedValues().includes('after'));
});

test('a node at the largest term does not campaign, so no term arithmetic can go past it', () => {
  const net = TestNet.create(['n1']);
  const n1 = net.node('n1');
  n1.storage.setHardState({ term: MAX_TERM, vote: '', commit: 1 });
  const fresh = net.restart('n1');
  net.tick('n1', 4 * ELECTION);
  assert.equal(fresh.role, 'follower');
  assert.equal(fresh.term, MAX_TERM);
});

test('without the bound on term steps, a frame at the largest term leaves a cluster that can never elect (the check bites)', () => {
  for (const maxTermStep of [2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const net = TestNet.create(ids3, { maxTermStep, preVote: true, checkQuorum: true });
    net.campaign('n1');
    net.propose('n1', 'x');
    for (const id of ids3) {
      try {
        net.node(id).raw.step({ type: 'heartbeat', from: id === 'n1' ? 'n2' : 'n1', to: id, term: MAX_TERM, commit: 0, readSeq: 0 });
      } catch (err) {
        if (!(err instanceof RaftError)) throw err;
      }
      net.deliver(net.node(id).flush());
    }
    let elected = false;
    for (let i = 0; i < 20 * ELECTION && !elected; i++) {
      net.tickAll();
      const top = Math.max(...[...net.nodes.values()].map((n) => n.term));
      const leader = net.leader();
      elected = leader !== undefined && leader.term === top && leader.term < MAX_TERM;
    }
    if (maxTermStep === 2 ** 32) assert.ok(elected, 'with the bound: refused, and a leader rules');
    else assert.ok(!elected, 'without it: every node is stuck at a term it cannot leave');
  }
});

test('stale messages (older term, old replies) are ignored without error', () => {
  const net = leaderNet();
  net.campaign('n2'); // term 3
  const n2 = net.node('n2');
  const before = fingerprint(n2);
  n2.raw.step({ type: 'appendResponse', from: 'n1', to: 'n2', term: 2, index: 5, reject: false, rejectHint: 0, logTerm: 0 });
  n2.raw.step({ type: 'voteResponse', from: 'n3', to: 'n2', term: 2, reject: true, commit: 0, commitTerm: 0 });
  n2.raw.step({ type: 'heartbeatResponse', from: 'n3', to: 'n2', term: 1, readSeq: 7, commit: 1 });
  n2.flush();
  assert.equal(fingerprint(n2), before);
  // An append reaching below the commit index cannot rewrite committed entries (§5.4.3).
  const n3 = net.node('n3');
  const committed = n3.terms();
  n3.raw.step({ type: 'append', from: 'n2', to: 'n3', term: 3, index: 3, logTerm: 1, entries: [{ index: 4, term: 3, type: 'normal', data: bytes('rewrite') }], commit: 4 });
  n3.flush();
  assert.deepEqual(n3.terms(), committed);
});

test('any junk or mutated message gives at most a RaftError, and the cluster keeps working', () => {
  const junk = fc.oneof(
    fc.anything(),
    fc.record({
      type: fc.constantFrom('append', 'appendResponse', 'heartbeat', 'heartbeatResponse', 'vote', 'preVote', 'voteResponse', 'preVoteResponse', 'snapshot', 'snapshotResponse', 'timeoutNow', 'readIndex', 'readIndexResponse', 'propose'),
      from: fc.constantFrom('n1', 'n2', 'n3', 'n9', ''),
      to: fc.constantFrom('n2', 'n1'),
      term: fc.oneof(fc.nat({ max: 5 }), fc.double(), fc.string(), fc.constantFrom(1000, 2 ** 32 + 3, MAX_TERM - 1, MAX_TERM, Number.MAX_SAFE_INTEGER)),
      index: fc.oneof(fc.nat({ max: 10 }), fc.constant(-1)),
      logTerm: fc.nat({ max: 5 }),
      commit: fc.nat({ max: 10 }),
      readSeq: fc.nat({ max: 3 }),
      reject: fc.boolean(),
      rejectHint: fc.nat({ max: 10 }),
      transfer: fc.boolean(),
      entries: fc.array(fc.record({ index: fc.nat({ max: 10 }), term: fc.nat({ max: 5 }), type: fc.constant('normal'), data: fc.uint8Array({ maxLength: 4 }) }), { maxLength: 3 }),
      ctx: fc.string(),
    }),
  );
  fc.assert(
    fc.property(fc.array(junk, { maxLength: 20 }), (messages) => {
      const net = leaderNet();
      for (const m of messages) {
        for (const id of ['n1', 'n2']) {
          const target = net.node(id);
          try {
            target.raw.step({ ...(m as object), to: id } as Message);
          } catch (err) {
            if (!(err instanceof RaftError)) throw err;
          }
          try {
            net.deliver(target.flush());
          } catch (err) {
            // What junk provoked (say, a vote in a made-up term) may be refused downstream too.
            if (!(err instanceof RaftError)) throw err;
          }
        }
      }
      // Whatever happened, the cluster can still elect a leader and commit. (Junk with a high
      // term may have moved followers past the leader's term: it then has to be re-elected.)
      net.heal();
      let proposedTo: TestNode | undefined;
      for (let i = 0; i < 100; i++) {
        const top = Math.max(...[...net.nodes.values()].map((n) => n.term));
        const leader = [...net.nodes.values()].find((n) => n.role === 'leader' && n.term === top);
        if (leader !== undefined && leader !== proposedTo) {
          net.propose(leader.id, 'still-works');
          proposedTo = leader;
        }
        if (proposedTo?.appliedValues().includes('still-works') === true) return;
        net.tickAll();
      }
      assert.fail('no leader committed a proposal within 100 ticks');
    }),
    { numRuns: 200 },
  );
});

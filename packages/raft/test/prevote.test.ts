// Pre-vote (thesis §9.6), check-quorum (thesis §6.2) and the leader lease that keeps removed
// or partitioned servers from disrupting a healthy cluster (thesis §4.2.3).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ELECTION, TestNet } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

test('thesis §9.6 with pre-vote, a partitioned node does not raise its term and cannot depose the leader when it returns', () => {
  const net = TestNet.create(ids3, { preVote: true, checkQuorum: true });
  net.campaign('n1');
  assert.equal(net.node('n1').term, 2);
  net.isolate('n3');
  for (let i = 0; i < 10 * ELECTION; i++) net.tickAll();
  const n3 = net.node('n3');
  assert.equal(n3.term, 2, 'its pre-votes fail, so its term never moves');
  assert.notEqual(n3.role, 'leader');
  net.heal();
  for (let i = 0; i < 3 * ELECTION; i++) net.tickAll();
  assert.equal(net.node('n1').role, 'leader', 'the leader stays leader');
  assert.equal(net.node('n1').term, 2, 'in the same term');
  assert.equal(n3.core.leader, 'n1', 'the returning node follows it');
});

test('thesis §9.6 without pre-vote, the same partitioned node does depose the leader (what pre-vote prevents)', () => {
  const net = TestNet.create(ids3, { preVote: false, checkQuorum: false });
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 10 * ELECTION; i++) net.tickAll();
  const n3 = net.node('n3');
  assert.ok(n3.term > 2, `its term climbed to ${n3.term}`);
  net.heal();
  for (let i = 0; i < 3 * ELECTION; i++) net.tickAll();
  assert.ok(net.node('n1').term >= n3.term, 'the old leader had to move to the disruptive term');
  assert.ok(net.node('n1').term > 2);
});

test('thesis §9.6 a granted pre-vote changes neither the voter\'s term nor its vote', () => {
  const net = TestNet.create(ids3, { preVote: true });
  const n2 = net.node('n2');
  n2.raw.step({ type: 'preVote', from: 'n1', to: 'n2', term: 2, index: 3, logTerm: 1, transfer: false });
  const replies = n2.flush();
  assert.deepEqual(
    replies.map((m) => [m.type, m.term, m.type === 'preVoteResponse' ? m.reject : undefined]),
    [['preVoteResponse', 2, false]],
  );
  assert.equal(n2.term, 1);
  assert.equal(n2.core.vote, '');
});

test('thesis §9.6 a pre-candidate that wins the pre-vote then campaigns for real in the next term', () => {
  const net = TestNet.create(ids3, { preVote: true });
  net.campaign('n2');
  assert.equal(net.node('n2').role, 'leader');
  assert.equal(net.node('n2').term, 2);
  const types = net.sent.map((m) => m.type);
  assert.ok(types.indexOf('preVote') < types.indexOf('vote'), 'pre-votes come first');
});

test('thesis §6.2 check-quorum: a leader that cannot hear a majority steps down within an election timeout', () => {
  const net = TestNet.create(ids3, { preVote: true, checkQuorum: true });
  net.campaign('n1');
  net.isolate('n1');
  const n1 = net.node('n1');
  let ticks = 0;
  while (n1.role === 'leader' && ticks < 3 * ELECTION) {
    net.tick('n1');
    ticks++;
  }
  assert.equal(n1.role, 'follower');
  assert.ok(ticks <= 2 * ELECTION, `stepped down after ${ticks} ticks`);
});

test('thesis §6.2 without check-quorum, an isolated leader keeps believing it leads (the contrast)', () => {
  const net = TestNet.create(ids3, { checkQuorum: false });
  net.campaign('n1');
  net.isolate('n1');
  net.tick('n1', 5 * ELECTION);
  assert.equal(net.node('n1').role, 'leader');
});

test('thesis §4.2.3 a follower that hears from its leader ignores vote requests, even of a higher term', () => {
  const net = TestNet.create(ids3, { checkQuorum: true });
  net.campaign('n1');
  const n2 = net.node('n2');
  n2.raw.step({ type: 'vote', from: 'n3', to: 'n2', term: 9, index: 100, logTerm: 9, transfer: false });
  assert.deepEqual(n2.flush(), [], 'no reply');
  assert.equal(n2.term, 2, 'and no term change');
  assert.equal(n2.core.vote, 'n1');
  // Once the lease has run out (no word from the leader for an election timeout), it votes.
  net.isolate('n2');
  net.tick('n2', ELECTION);
  n2.raw.step({ type: 'vote', from: 'n3', to: 'n2', term: 9, index: 100, logTerm: 9, transfer: false });
  const replies = n2.flush();
  assert.ok(replies.some((m) => m.type === 'voteResponse' && !m.reject), 'vote granted after the lease');
  assert.equal(n2.term, 9);
});

test('a follower told its leader is unreachable campaigns within half an election timeout', () => {
  const net = TestNet.create(ids3, { preVote: true, checkQuorum: true });
  net.campaign('n1');
  net.isolate('n1'); // the leader's process is gone
  for (const id of ['n2', 'n3']) net.node(id).raw.reportLeaderUnreachable();
  let ticks = 0;
  while (!['n2', 'n3'].some((id) => net.node(id).role === 'leader') && ticks < 3 * ELECTION) {
    net.tick('n2');
    net.tick('n3');
    ticks++;
  }
  const leader = ['n2', 'n3'].find((id) => net.node(id).role === 'leader');
  assert.ok(leader !== undefined, 'a new leader was elected');
  assert.ok(ticks <= ELECTION / 2 + 1, `after ${ticks} ticks, not a whole timeout (${ELECTION})`);
});

test('a false alarm about the leader disturbs nothing: the pre-vote fails while the others hear it', () => {
  const net = TestNet.create(ids3, { preVote: true, checkQuorum: true });
  net.campaign('n1');
  net.node('n3').raw.reportLeaderUnreachable();
  for (let i = 0; i < 3 * ELECTION; i++) net.tickAll();
  assert.equal(net.node('n1').role, 'leader');
  assert.equal(net.node('n1').term, 2, 'no term was spent');
  assert.equal(net.node('n3').core.leader, 'n1', 'the next heartbeat restored the leader');
});

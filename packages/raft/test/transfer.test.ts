// Leadership transfer with TimeoutNow (thesis §3.10), and what happens to proposals meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ELECTION, TestNet, bytes, refusal } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

test('thesis §3.10 transfer to an up-to-date follower: TimeoutNow, and it wins the next term without waiting for a timeout', () => {
  for (const checkQuorum of [false, true]) {
    const net = TestNet.create(ids3, { checkQuorum, preVote: checkQuorum });
    net.campaign('n1');
    net.propose('n1', 'x');
    const before = net.sent.length;
    net.node('n1').raw.transferLeadership('n3');
    net.deliver(net.node('n1').flush());
    assert.ok(net.sent.slice(before).some((m) => m.type === 'timeoutNow' && m.to === 'n3'));
    assert.equal(net.node('n3').role, 'leader', `no ticks needed (checkQuorum ${checkQuorum}): voters honour a transfer even within their leader lease`);
    assert.equal(net.node('n3').term, 3);
    assert.equal(net.node('n1').role, 'follower');
    assert.equal(net.node('n1').core.leader, 'n3');
  }
});

test('thesis §3.10 transfer to a lagging follower: the leader first brings it up to date', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 5; i++) net.propose('n1', `v${i}`);
  net.heal();
  net.node('n1').raw.transferLeadership('n3');
  net.deliver(net.node('n1').flush());
  const n3 = net.node('n3');
  assert.equal(n3.role, 'leader');
  const timeoutAt = net.sent.findIndex((m) => m.type === 'timeoutNow');
  const lastAppend = net.sent.findLastIndex((m, i) => i < timeoutAt && m.type === 'appendResponse' && m.from === 'n3');
  assert.ok(lastAppend >= 0 && lastAppend < timeoutAt, 'TimeoutNow went out only after n3 acknowledged the log');
  assert.deepEqual(n3.appliedValues(), ['v0', 'v1', 'v2', 'v3', 'v4'], 'nothing committed was lost');
});

test('thesis §3.10 proposals are refused during a transfer, and accepted again if it is abandoned after an election timeout', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.isolate('n3'); // the transfer cannot finish
  const n1 = net.node('n1');
  n1.raw.transferLeadership('n3');
  net.deliver(n1.flush());
  assert.equal(n1.raw.status().leadTransferee, 'n3');
  assert.equal(refusal(() => n1.raw.propose(bytes('during')))?.code, 'proposal-dropped');
  // A proposal forwarded by a follower meanwhile is dropped too, leaving no trace in the log.
  const last = n1.lastIndex;
  net.propose('n2', 'forwarded');
  assert.equal(n1.lastIndex, last);
  net.tick('n1', ELECTION);
  assert.equal(n1.raw.status().leadTransferee, '', 'abandoned');
  assert.equal(n1.role, 'leader');
  assert.equal(refusal(() => n1.raw.propose(bytes('after'))), undefined);
});

test('thesis §3.10 transfer is only to a voter, and only the leader can start one', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  assert.equal(refusal(() => net.node('n1').raw.transferLeadership('n9'))?.code, 'invalid-state');
  assert.deepEqual(refusal(() => net.node('n2').raw.transferLeadership('n3')), { code: 'not-leader', leader: 'n1' });
  net.node('n1').raw.transferLeadership('n1');
  assert.equal(net.node('n1').raw.status().leadTransferee, '', 'transferring to itself is a no-op');
});

// Membership changes while running (thesis chapter 4): one server at a time, learners that
// catch up before promotion, and removal of the current leader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStorage, type ConfChange } from '@flotilla/raft';
import { ELECTION, TestNet, TestNode, refusal } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

function change(net: TestNet, id: string, cc: ConfChange): void {
  const n = net.node(id);
  n.raw.proposeConfChange(cc);
  net.deliver(n.flush());
  net.tick(id); // a heartbeat spreads the commit index
}

function joining(net: TestNet, id: string): TestNode {
  const n = new TestNode(id, new MemoryStorage(), {}, 77);
  net.add(n);
  return n;
}

test('thesis §4.1 a new voter joins empty, catches up from the log, and counts toward the majority', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'before');
  const n4 = joining(net, 'n4');
  change(net, 'n1', { type: 'addVoter', nodeId: 'n4' });
  for (const id of [...ids3, 'n4']) assert.deepEqual(net.node(id).raw.confState().voters.toSorted(), ['n1', 'n2', 'n3', 'n4'], id);
  assert.deepEqual(n4.terms(), net.node('n1').terms(), 'it replayed the whole log, founding members included');
  assert.deepEqual(n4.appliedValues(), ['before']);
  // Four voters need three: with n2 and n3 cut off, n1 and n4 alone cannot commit.
  net.isolate('n2');
  net.isolate('n3');
  net.propose('n1', 'needs-three');
  assert.equal(net.node('n1').commit, net.node('n1').lastIndex - 1);
  net.heal();
  net.isolate('n3');
  net.tick('n1');
  assert.equal(net.node('n1').commit, net.node('n1').lastIndex, 'n1, n2 and n4 are a majority of four');
});

test('thesis §4.1 a removed voter no longer counts: the majority shrinks', () => {
  const net = TestNet.create(['n1', 'n2', 'n3', 'n4', 'n5']);
  net.campaign('n1');
  change(net, 'n1', { type: 'removeNode', nodeId: 'n5' });
  change(net, 'n1', { type: 'removeNode', nodeId: 'n4' });
  assert.deepEqual(net.node('n1').raw.confState().voters.toSorted(), ['n1', 'n2', 'n3']);
  net.isolate('n3');
  net.isolate('n4');
  net.isolate('n5');
  net.propose('n1', 'x');
  assert.equal(net.node('n1').commit, net.node('n1').lastIndex, 'two of three suffice');
  // The removed node neither campaigns nor gets replication.
  const n5 = net.node('n5');
  net.tick('n5', 5 * ELECTION);
  assert.equal(n5.role, 'follower');
});

test('thesis §4.1 one change at a time: a second change waits until the first is applied', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n1 = net.node('n1');
  n1.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n4' });
  assert.equal(refusal(() => n1.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n5' }))?.code, 'conf-change-pending');
  net.deliver(n1.flush());
  assert.equal(refusal(() => n1.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n5' }))?.code, undefined, 'accepted once the first is applied');
  assert.equal(
    refusal(() => n1.raw.proposeAll([{ type: 'confChange', change: { type: 'removeNode', nodeId: 'n2' } }, { type: 'confChange', change: { type: 'removeNode', nodeId: 'n3' } }]))?.code,
    'conf-change-pending',
    'two changes in one batch are refused too',
  );
});

test('thesis §4.1 a newly elected leader makes no change until it has applied the log it inherited', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  // n1 appends a change that reaches only n2, and never learns that it did.
  net.drop((m) => m.from === 'n1' && m.to === 'n3');
  net.drop((m) => m.from === 'n2' && m.to === 'n1');
  net.node('n1').raw.proposeConfChange({ type: 'addLearner', nodeId: 'n4' });
  net.deliver(net.node('n1').flush());
  net.heal();
  // n2 wins the next term, but its appends are lost: nothing of its term is committed.
  net.drop((m) => m.from === 'n2' && (m.type === 'append' || m.type === 'heartbeat'));
  net.campaign('n2');
  const n2 = net.node('n2');
  assert.equal(n2.role, 'leader');
  assert.equal(
    refusal(() => n2.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n5' }))?.code,
    'conf-change-pending',
    'the inherited change may still take effect; no change on top of it yet',
  );
  net.heal();
  net.tick('n2');
  assert.deepEqual(n2.raw.confState().learners, ['n4'], 'the inherited change is now applied');
  assert.equal(refusal(() => n2.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n5' }))?.code, undefined);
});

test('thesis §4.2.1 a learner gets the log but neither votes nor counts, and is promoted only once caught up', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n4 = joining(net, 'n4');
  net.isolate('n4');
  change(net, 'n1', { type: 'addLearner', nodeId: 'n4' });
  for (let i = 0; i < 10; i++) net.propose('n1', `v${i}`);
  const n1 = net.node('n1');
  assert.equal(
    refusal(() => n1.raw.proposeConfChange({ type: 'addVoter', nodeId: 'n4' }))?.code,
    'learner-not-caught-up',
    'a learner that is cut off cannot be promoted',
  );
  net.heal();
  net.tick('n1', 2);
  assert.deepEqual(n4.terms(), n1.terms(), 'the learner caught up');
  assert.equal(n4.role, 'follower');
  // A learner's copy does not count toward commitment.
  net.isolate('n2');
  net.isolate('n3');
  net.propose('n1', 'needs-a-voter');
  assert.equal(n4.lastIndex, n1.lastIndex, 'the learner has the entry');
  assert.equal(n1.commit, n1.lastIndex - 1, 'but the entry is not committed');
  net.heal();
  net.tick('n1');
  // A learner never campaigns.
  net.isolate('n4');
  net.tick('n4', 5 * ELECTION);
  assert.equal(n4.role, 'follower');
  assert.equal(n4.term, n1.term);
  net.heal();
  net.tick('n1', 2);
  change(net, 'n1', { type: 'addVoter', nodeId: 'n4' });
  assert.deepEqual(n1.raw.confState().voters.toSorted(), ['n1', 'n2', 'n3', 'n4']);
  assert.deepEqual(n1.raw.confState().learners, []);
});

test('thesis §4.2.2 removing the leader: it keeps replicating until the others know, then hands over', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  change(net, 'n1', { type: 'removeNode', nodeId: 'n1' });
  net.tick('n1', 2);
  const n1 = net.node('n1');
  assert.equal(n1.role, 'follower', 'the removed leader stepped down');
  const next = net.leader();
  assert.ok(next !== undefined && next.id !== 'n1', 'a survivor leads at once, through TimeoutNow');
  assert.deepEqual(next.raw.confState().voters.toSorted(), ['n2', 'n3']);
  net.propose(next.id, 'after');
  assert.deepEqual(next.appliedValues(), ['x', 'after']);
  // The removed node never campaigns.
  net.isolate('n1');
  net.tick('n1', 5 * ELECTION);
  assert.equal(n1.role, 'follower');
});

test('thesis §4.2.2 a removed leader of two members waits until the survivor knows before it steps down', () => {
  // With configurations taking effect when applied, a survivor that never hears the removal
  // committed still counts the old leader's vote, and could never win alone.
  const net = TestNet.create(['n1', 'n2']);
  net.campaign('n1');
  const n1 = net.node('n1');
  const n2 = net.node('n2');
  // The removal reaches n2, but nothing n1 sends afterwards does (so n2 never learns the commit).
  net.drop((m) => m.from === 'n1' && !(m.type === 'append' && m.entries.some((e) => e.type === 'confChange')));
  n1.raw.proposeConfChange({ type: 'removeNode', nodeId: 'n1' });
  net.deliver(n1.flush());
  assert.equal(n1.commit, n1.lastIndex, 'the removal is committed');
  assert.ok(n2.commit < n1.commit, 'but n2 does not know it');
  net.tick('n1', 3 * ELECTION);
  assert.equal(n1.role, 'leader', 'so n1 keeps leading, without counting itself');
  assert.equal(refusal(() => n1.raw.propose(new Uint8Array([1])))?.code, 'proposal-dropped', 'and takes no proposals');
  net.heal();
  net.tick('n1');
  assert.equal(n1.role, 'follower', 'once n2 reports the commit, n1 steps down');
  assert.equal(n2.role, 'leader', 'and hands over at once');
  assert.deepEqual(n2.raw.confState().voters, ['n2']);
  net.isolate('n1'); // the operator shuts the removed member down
  net.propose('n2', 'alone');
  assert.deepEqual(n2.appliedValues(), ['alone']);
});

test('thesis §4.2.2 if the removed leader crashes before handing over, the survivor learns the commit from its vote reply', () => {
  const net = TestNet.create(['n1', 'n2']);
  net.campaign('n1');
  const n1 = net.node('n1');
  // n1 appends its removal (index R) and one more entry; only the removal reaches n2.
  n1.raw.proposeConfChange({ type: 'removeNode', nodeId: 'n1' });
  const removalAt = n1.lastIndex;
  n1.raw.propose(new Uint8Array([1]));
  net.drop((m) => m.from === 'n1' && !(m.type === 'append' && m.entries.every((e) => e.index <= removalAt)));
  net.deliver(n1.flush());
  assert.ok(n1.commit >= removalAt, 'the removal committed');
  assert.ok(net.node('n2').commit < removalAt, 'n2 does not know');
  // n1 crashes before it could hand over; on restart it re-applies its removal and is no
  // longer a voter, but its log is longer than n2's, so it refuses n2 its vote.
  const restarted = net.restart('n1');
  assert.deepEqual(restarted.raw.confState().voters, ['n2']);
  net.heal();
  const n2 = net.node('n2');
  for (let i = 0; i < 6 * ELECTION && n2.role !== 'leader'; i++) net.tickAll();
  assert.equal(n2.role, 'leader', 'the refusal carried the commit index, so n2 applied the removal and won alone');
  assert.deepEqual(n2.raw.confState().voters, ['n2']);
  assert.equal(restarted.role, 'follower');
});

test('thesis §4.1 changes that make no sense are refused with a reason', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n1 = net.node('n1');
  assert.equal(refusal(() => n1.raw.proposeConfChange({ type: 'addVoter', nodeId: 'n2' }))?.code, 'invalid-conf-change');
  assert.equal(refusal(() => n1.raw.proposeConfChange({ type: 'removeNode', nodeId: 'n9' }))?.code, 'invalid-conf-change');
  assert.equal(refusal(() => n1.raw.proposeConfChange({ type: 'addLearner', nodeId: 'n3' }))?.code, 'invalid-conf-change');
  const single = TestNet.create(['n1']);
  single.campaign('n1');
  assert.equal(refusal(() => single.node('n1').raw.proposeConfChange({ type: 'removeNode', nodeId: 'n1' }))?.code, 'invalid-conf-change');
});

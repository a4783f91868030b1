// Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaftError } from '@flotilla/raft';
import { TestNet } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

test('thesis §6.4 the leader answers a read with its commit index once a heartbeat round confirms it still leads', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const n1 = net.node('n1');
  const before = net.sent.length;
  n1.raw.readIndex('r1');
  const out = n1.flush();
  assert.deepEqual(n1.readStates, [], 'not before the round');
  assert.deepEqual(out.filter((m) => m.type === 'heartbeat').map((m) => m.to).sort(), ['n2', 'n3']);
  net.deliver(out);
  assert.deepEqual(n1.readStates, [{ index: n1.commit, ctx: 'r1' }]);
  assert.ok(net.sent.slice(before).every((m) => m.type !== 'append'), 'the read wrote nothing to the log');
});

test('thesis §6.4 a leader cut off from the majority never answers a read (a newer leader may exist)', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.isolate('n1');
  const n1 = net.node('n1');
  n1.raw.readIndex('stale');
  net.deliver(n1.flush());
  net.campaign('n2');
  net.propose('n2', 'newer');
  net.tick('n1', 5);
  assert.deepEqual(n1.readStates, []);
});

test('thesis §6.4 a follower asks the leader for the read index and serves the read itself', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const n3 = net.node('n3');
  n3.raw.readIndex('f1');
  net.deliver(n3.flush());
  assert.deepEqual(n3.readStates, [{ index: net.node('n1').commit, ctx: 'f1' }]);
  assert.ok(n3.core.log.applied >= n3.readStates[0]!.index, 'the follower has applied up to it');
});

test('thesis §6.4 a new leader answers no read before it has committed an entry of its own term', () => {
  const net = TestNet.create(ids3);
  net.drop((m) => m.type === 'append' || m.type === 'appendResponse');
  net.campaign('n1');
  const n1 = net.node('n1');
  assert.equal(n1.role, 'leader');
  assert.ok(n1.commit < n1.lastIndex, 'its no-op is not committed yet');
  n1.raw.readIndex('early');
  net.deliver(n1.flush());
  net.tick('n1', 2);
  assert.deepEqual(n1.readStates, [], 'its commit index might still be behind an earlier leader\'s');
  net.heal();
  net.tick('n1', 2);
  assert.deepEqual(n1.readStates, [{ index: n1.lastIndex, ctx: 'early' }]);
});

test('thesis §6.4 a single-voter cluster answers reads at once; a follower with no leader refuses', () => {
  const single = TestNet.create(['n1']);
  single.campaign('n1');
  const n1 = single.node('n1');
  n1.raw.readIndex('solo');
  n1.flush();
  assert.deepEqual(n1.readStates, [{ index: n1.commit, ctx: 'solo' }]);

  const net = TestNet.create(ids3);
  assert.throws(
    () => net.node('n2').raw.readIndex('nobody'),
    (e: unknown) => e instanceof RaftError && e.code === 'not-leader' && e.leader === undefined,
  );
});

// What a damaged disk or a damaged frame does to the core: a follower that lost entries it had
// acknowledged (a damaged or restored disk) is caught up by the leader instead of being
// stranded; a snapshot chunk that fails its checksum is treated as lost and sent again; a
// node whose host found its state damaged never campaigns; and a member pushed far ahead by
// hostile frames is reached again, a bounded step at a time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStorage, crc32c, type Message, type SnapshotMessage } from '@flotilla/raft';
import { ELECTION, TestNet, TestNode, bytes } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

/** n3's storage cut back to its first `keep` entries and an older hard state, as after a damaged disk. */
function cutBack(n: TestNode, keep: number): MemoryStorage {
  const storage = new MemoryStorage();
  const s = n.storage.snapshot();
  if (s.metadata.index > 0) storage.applySnapshot(s);
  storage.append(n.storage.entries(n.storage.firstIndex(), keep + 1, Number.MAX_SAFE_INTEGER));
  storage.setHardState({ term: 1, vote: '', commit: Math.min(keep, n.storage.initialState().hardState.commit) });
  return storage;
}

test('a follower that lost entries it had acknowledged is caught up by the leader (issue 11, 3)', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  for (let i = 0; i < 20; i++) net.propose('n1', `v${i}`);
  const n1 = net.node('n1');
  assert.equal(net.node('n3').lastIndex, n1.lastIndex);
  const before = n1.raw.status().progress!.get('n3')!.match;
  const storage = cutBack(net.node('n3'), 6);
  net.nodes.set('n3', new TestNode('n3', storage, net.node('n3').overrides, 77));
  net.node('n3').flush();
  assert.equal(net.node('n3').lastIndex, 6);
  // The leader still believes n3 holds everything: its heartbeat claims a commit beyond n3's log.
  net.tick('n1', 2);
  const pr = n1.raw.status().progress!.get('n3')!;
  assert.ok(before > 6 && pr.match === n1.lastIndex, `match went ${before} → ${pr.match}`);
  assert.deepEqual(net.node('n3').terms(), n1.terms(), 'n3 holds the leader\'s log again');
  net.propose('n1', 'after');
  assert.ok(net.node('n3').appliedValues().includes('after'));
});

test('a follower that lost entries the leader has compacted away gets the snapshot', () => {
  const net = TestNet.create(ids3, { snapshotChunkSize: 32 });
  net.campaign('n1');
  for (let i = 0; i < 20; i++) net.propose('n1', `v${i}`);
  const n1 = net.node('n1');
  const point = n1.raw.snapshotPoint();
  n1.storage.createSnapshot(point.index, point.confState, bytes('state'));
  n1.storage.compact(point.index);
  const storage = cutBack(net.node('n3'), 6);
  net.nodes.set('n3', new TestNode('n3', storage, net.node('n3').overrides, 78));
  net.node('n3').flush();
  net.tick('n1', 4);
  assert.deepEqual(net.node('n3').installed?.data, bytes('state'));
  net.propose('n1', 'after');
  assert.ok(net.node('n3').appliedValues().includes('after'));
  assert.deepEqual(net.node('n3').terms(), n1.terms());
});

test('a snapshot chunk that fails its checksum is not taken, and is sent again', () => {
  const net = TestNet.create(ids3, { snapshotChunkSize: 8 });
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 10; i++) net.propose('n1', `v${i}`);
  const n1 = net.node('n1');
  const point = n1.raw.snapshotPoint();
  n1.storage.createSnapshot(point.index, point.confState, bytes('0123456789abcdefghijklmnopqrstuvwxyz'));
  n1.storage.compact(point.index);
  net.heal();
  // Damage the chunk at offset 8 once on its way to n3, leaving its checksum as sent.
  let damaged = 0;
  const n3 = net.node('n3');
  const step = n3.raw.step.bind(n3.raw);
  n3.raw.step = (m: Message): void => {
    if (m.type === 'snapshot' && m.offset === 8 && damaged++ === 0) {
      const data = m.data.slice();
      data[2] = data[2]! ^ 0x01;
      step({ ...m, data });
      return;
    }
    step(m);
  };
  const before = net.sent.length;
  net.tick('n1', 4);
  const chunks = net.sent.slice(before).filter((m): m is SnapshotMessage => m.type === 'snapshot');
  assert.equal(damaged, 2, 'the damaged chunk was sent again');
  assert.ok(chunks.every((c) => c.checksum === crc32c(c.data)), 'every chunk carries its checksum');
  assert.deepEqual(n3.installed?.data, n1.storage.snapshot().data, 'what was installed is the undamaged snapshot');
});

test('a node told to refuse campaigns never leads, even when asked to take over; the others elect', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  net.node('n2').raw.refuseCampaigns('its state machine is damaged');
  net.node('n1').raw.transferLeadership('n2');
  net.deliver(net.node('n1').flush());
  net.tickAll(3 * ELECTION);
  assert.notEqual(net.node('n2').role, 'leader');
  assert.notEqual(net.node('n2').role, 'candidate');
  net.isolate('n1');
  net.tickAll(6 * ELECTION);
  assert.equal(net.node('n3').role, 'leader', 'n3 was elected with n2\'s vote');
  net.propose('n3', 'y');
  assert.ok(net.node('n2').appliedValues().includes('y'), 'n2 still replicates');
  // Lifted, it campaigns again.
  net.node('n2').raw.refuseCampaigns(undefined);
  net.node('n2').raw.campaign();
  net.deliver(net.node('n2').flush());
  assert.equal(net.node('n2').role, 'leader');
});

test('a member pushed far ahead (many bounded steps) is reached again, and the cluster elects at its term', () => {
  const net = TestNet.create(ids3, { preVote: true, checkQuorum: true });
  net.campaign('n1');
  net.propose('n1', 'x');
  const n3 = net.node('n3');
  n3.storage.setHardState({ term: 2 + 5 * 2 ** 20 + 7, vote: '', commit: n3.commit });
  net.restart('n3');
  const top = (): number => Math.max(...[...net.nodes.values()].map((n) => n.term));
  for (let i = 0; i < 40 * ELECTION && !(net.leader()?.term === top() && [...net.nodes.values()].every((n) => n.term === top())); i++) net.tickAll();
  const leader = net.leader();
  assert.ok(leader !== undefined && leader.term === top() && top() >= 2 + 5 * 2 ** 20 + 7, `leader ${leader?.id} at ${leader?.term}, top ${top()}`);
  net.propose(leader.id, 'after');
  for (const id of ids3) assert.ok(net.node(id).appliedValues().includes('after'), id);
});

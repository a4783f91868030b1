// Log compaction and InstallSnapshot (§7), sent in chunks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaftError, crc32c, type SnapshotMessage } from '@flotilla/raft';
import { TestNet, bytes, type TestNode } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

/** What a host does to compact: snapshot the state machine at the applied index, drop the log. */
function compact(n: TestNode, keep = 0): number {
  const point = n.raw.snapshotPoint();
  n.storage.createSnapshot(point.index, point.confState, bytes(JSON.stringify(n.appliedValues())));
  n.storage.compact(point.index - keep);
  return point.index;
}

function snapshotChunks(net: TestNet, from: number): SnapshotMessage[] {
  return net.sent.slice(from).filter((m): m is SnapshotMessage => m.type === 'snapshot');
}

test('§7 the host compacts up to the applied index; a follower too far behind gets the snapshot in chunks and continues', () => {
  const net = TestNet.create(ids3, { snapshotChunkSize: 16 });
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 20; i++) net.propose('n1', `value-${i}`);
  const n1 = net.node('n1');
  const at = compact(n1);
  assert.equal(at, n1.commit);
  assert.equal(n1.core.log.firstIndex(), at + 1, 'the leader no longer has the entries n3 needs');

  net.heal();
  const before = net.sent.length;
  net.tick('n1', 3);
  const n3 = net.node('n3');
  const chunks = snapshotChunks(net, before).filter((m) => m.to === 'n3');
  const expected = n1.storage.snapshot().data;
  assert.ok(chunks.length > 1, `sent in ${chunks.length} chunks`);
  assert.ok(chunks.every((c) => c.data.byteLength <= 16));
  assert.deepEqual(chunks.map((c) => c.offset), chunks.map((_, i) => i * 16), 'in order, each once');
  assert.deepEqual(n3.installed?.data, expected, 'the follower installed the whole snapshot');
  assert.equal(n3.core.log.firstIndex(), at + 1);
  net.propose('n1', 'after');
  net.tick('n1');
  assert.deepEqual(n3.appliedValues(), ['after'], 'and then applies new entries from the log');
  assert.deepEqual(n3.terms(), n1.terms());
});

test('§7 a lost chunk is sent again, and a follower that restarts mid-transfer starts over', () => {
  const net = TestNet.create(ids3, { snapshotChunkSize: 8 });
  net.campaign('n1');
  net.isolate('n3');
  for (let i = 0; i < 10; i++) net.propose('n1', `v${i}`);
  compact(net.node('n1'));
  net.heal();
  let lost = 0;
  net.drop((m) => m.type === 'snapshot' && m.offset === 16 && lost++ === 0);
  net.drop((m) => m.type === 'snapshot' && m.offset === 32); // stall the transfer at 32 bytes
  const before = net.sent.length;
  net.tick('n1', 2);
  assert.equal(lost, 2, 'the chunk at 16 was dropped once and went out again');
  assert.equal(net.node('n3').installed, undefined, 'the transfer is stalled half way');
  net.restart('n3'); // loses the 32 bytes it held
  net.heal();
  net.tick('n1', 6);
  const chunks = snapshotChunks(net, before);
  assert.ok(chunks.filter((c) => c.offset === 0).length >= 2, 'the restarted follower asked to start over');
  assert.deepEqual(net.node('n3').installed?.data, net.node('n1').storage.snapshot().data);
  assert.deepEqual(net.node('n3').terms(), net.node('n1').terms());
});

test('§7 a follower whose log already holds the snapshot\'s last entry keeps its log and only moves its commit', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const n2 = net.node('n2');
  const s = net.node('n1').raw.snapshotPoint();
  n2.raw.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 2, metadata: s, offset: 0, data: bytes('ignored'), done: true, checksum: crc32c(bytes('ignored')) });
  n2.flush();
  assert.equal(n2.installed, undefined);
  assert.deepEqual(n2.terms(), net.node('n1').terms());
});

test('§7 compaction needs a snapshot that covers it, and snapshots never go backwards', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  net.propose('n1', 'x');
  const n1 = net.node('n1');
  assert.throws(() => n1.storage.compact(3), (e: unknown) => e instanceof RaftError && e.code === 'invalid-state');
  const at = compact(n1);
  assert.throws(() => n1.storage.createSnapshot(at, n1.raw.confState(), bytes('old')), (e: unknown) => e instanceof RaftError && e.code === 'snapshot-out-of-date');
  assert.throws(() => n1.storage.createSnapshot(at + 5, n1.raw.confState(), bytes('future')), (e: unknown) => e instanceof RaftError && e.code === 'unavailable');
});

test('§7 a snapshot point cannot be taken while a Ready is being handled', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n1 = net.node('n1');
  n1.raw.propose(bytes('x'));
  n1.raw.ready();
  assert.throws(() => n1.raw.snapshotPoint(), (e: unknown) => e instanceof RaftError && e.code === 'invalid-state');
  n1.raw.advance();
  assert.equal(n1.raw.snapshotPoint().index, n1.core.log.applied);
});

test('§7 a restarted node resumes applying after its snapshot, not from the compaction point', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  for (let i = 0; i < 5; i++) net.propose('n1', `v${i}`);
  const n2 = net.node('n2');
  const at = compact(n2, 2); // keep two entries before the snapshot
  const restarted = net.restart('n2');
  assert.equal(restarted.core.log.firstIndex(), at - 1);
  assert.equal(restarted.core.log.applied, at, 'applying resumes from the snapshot');
  assert.deepEqual(restarted.applied, [], 'nothing before the snapshot is applied twice');
  net.propose('n1', 'next');
  net.tick('n1');
  assert.deepEqual(restarted.appliedValues(), ['next']);
});

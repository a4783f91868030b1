// Proposals on the leader, on followers (forwarded or refused), and under back-pressure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RaftError, type RaftErrorCode } from '@flotilla/raft';
import { TestNet, bytes, refusal } from './harness.ts';

const ids3 = ['n1', 'n2', 'n3'];

test('a proposal on the leader is appended at the returned index and term', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n1 = net.node('n1');
  const result = n1.raw.propose(bytes('x'));
  assert.deepEqual(result, { kind: 'appended', index: 5, term: 2 });
  net.deliver(n1.flush());
  const applied = n1.applied.find((e) => e.index === 5);
  assert.ok(applied?.type === 'normal' && applied.term === 2);
});

test('a proposal on a follower is forwarded to the leader it knows, and commits', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n3 = net.node('n3');
  assert.deepEqual(n3.raw.propose(bytes('via-n3')), { kind: 'forwarded', leader: 'n1' });
  net.deliver(n3.flush());
  net.tick('n1');
  for (const id of ids3) assert.deepEqual(net.node(id).appliedValues(), ['via-n3'], id);
});

test('with forwarding disabled, a follower refuses with not-leader naming the leader', () => {
  const net = TestNet.create(ids3, { disableProposalForwarding: true });
  net.campaign('n1');
  assert.deepEqual(refusal(() => net.node('n2').raw.propose(bytes('x'))), { code: 'not-leader', leader: 'n1' });
});

test('with no leader known, a proposal is refused with not-leader and no leader named', () => {
  const net = TestNet.create(ids3);
  assert.deepEqual(refusal(() => net.node('n2').raw.propose(bytes('x'))), { code: 'not-leader', leader: undefined });
  const n1 = net.node('n1');
  n1.raw.campaign();
  n1.flush();
  assert.equal(n1.role, 'candidate');
  assert.equal(refusal(() => n1.raw.propose(bytes('x')))?.code, 'not-leader');
});

test('a leader holding too many uncommitted bytes drops new proposals until they commit', () => {
  const net = TestNet.create(ids3, { maxUncommittedEntriesSize: 200 });
  net.campaign('n1');
  net.isolate('n2');
  net.isolate('n3');
  const n1 = net.node('n1');
  let accepted = 0;
  let code: RaftErrorCode | undefined;
  for (let i = 0; i < 50 && code === undefined; i++) {
    code = refusal(() => n1.raw.propose(bytes('x'.repeat(40))))?.code;
    if (code === undefined) accepted++;
  }
  assert.equal(code, 'proposal-dropped');
  assert.ok(accepted >= 1 && accepted <= 4, `${accepted} proposals of 64 bytes fit in 200`);
  net.heal();
  net.tick('n1', 2);
  assert.equal(refusal(() => n1.raw.propose(bytes('y'))), undefined, 'room again once they commit');
});

test('ready() and advance() must alternate', () => {
  const net = TestNet.create(ids3);
  net.campaign('n1');
  const n1 = net.node('n1');
  n1.raw.propose(bytes('x'));
  n1.raw.ready();
  assert.equal(n1.raw.hasReady(), false);
  assert.throws(() => n1.raw.ready(), (e: unknown) => e instanceof RaftError && e.code === 'invalid-state');
  n1.raw.advance();
  assert.throws(() => n1.raw.advance(), (e: unknown) => e instanceof RaftError && e.code === 'invalid-state');
});

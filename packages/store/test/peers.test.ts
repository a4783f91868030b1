// Issue 11, 4: hostile peer frames. A name that is not a member is refused at the transport
// before any Raft message is read; a member's incarnation the cluster does not know is refused
// too; and a member (or anyone holding its credential) sending the frame that once stopped the
// cluster for good, a heartbeat at term 2^53 − 1, or one at the largest term, cannot move any
// master more than a bounded step: the cluster keeps electing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TERM } from '@flotilla/raft';
import { Dialer, makeCredential, silentLogger, type Frame } from '@flotilla/wire';
import { TestCluster, SECRET, enc, sleep } from './support.ts';

const ids = ['m1', 'm2', 'm3'];

/**
 * Dials a master's peer port as `name` and sends `frames`: the first at once, the rest once
 * it is welcomed (as a peer must). Reports what came back and why the connection closed.
 */
async function dialAs(port: number, name: string, frames: Frame[]): Promise<{ answers: Frame[]; closed: string | undefined }> {
  const answers: Frame[] = [];
  let closed: string | undefined;
  let sent = false;
  await new Promise<void>((resolve) => {
    const d = new Dialer({
      url: `ws://127.0.0.1:${port}/raft`,
      remote: 'target',
      credential: () => makeCredential(SECRET, name),
      maxFrameBytes: 1 << 20,
      maxBufferedBytes: 1 << 20,
      heartbeatMs: 1000,
      logger: silentLogger,
      onConnect: (conn) => {
        // Once: a redial after a refusal must not repeat the frames.
        if (sent) return;
        sent = true;
        conn.on('frame', (f) => {
          answers.push(f);
          if (f['t'] === 'welcome') for (const rest of frames.slice(1)) conn.send(rest);
        });
        conn.send(frames[0]!);
      },
      onDisconnect: (reason) => {
        closed ??= reason;
      },
    });
    d.start();
    setTimeout(() => {
      d.stop();
      resolve();
    }, 600);
  });
  return { answers, closed };
}

const heartbeat = (from: string, to: string, term: number): Frame => ({ t: 'raft', m: { type: 'heartbeat', from, to, term, commit: 0, readSeq: 0 } });

async function keepsElecting(c: TestCluster): Promise<void> {
  const first = await c.leader(8000);
  const client = c.client();
  await client.put('after', enc('1'));
  await c.stopMember(first.id);
  const second = await c.leader(8000);
  assert.notEqual(second.id, first.id);
  await client.put('after', enc('2'));
  await c.startMember(first.id);
  await c.converged(10_000);
  for (const n of c.running()) assert.ok(n.status().term < 2 ** 22, `${n.id} at term ${n.status().term}`);
}

test('issue 11, 4: the heartbeat at term 2^53 − 1 from a non-member name is refused at the transport, and the cluster keeps electing', async (t) => {
  const c = await TestCluster.start(ids);
  t.after(() => c.stop());
  await c.leader();
  for (const m of c.members.values()) {
    const hello = { t: 'hello', member: 'evil', memberId: '0123456789abcdef', cluster: 'flotilla', clusterId: null };
    const r = await dialAs(m.peerPort, 'evil', [hello, heartbeat('evil', m.id, Number.MAX_SAFE_INTEGER)]);
    assert.deepEqual(r.answers.map((a) => [a['t'], a['reason']]), [['refused', 'not-member']], m.id);
    // And without introducing itself first, the raw frame alone: the connection is dropped unread.
    const raw = await dialAs(m.peerPort, 'evil', [heartbeat('evil', m.id, Number.MAX_SAFE_INTEGER)]);
    assert.deepEqual(raw.answers, []);
    assert.notEqual(raw.closed, undefined);
  }
  for (const n of c.running()) assert.ok(n.status().term < 10);
  await keepsElecting(c);
});

test('issue 11, 4: the same frames under a member\'s name and its real member id: the exact one moves nothing, one at the largest term moves a master one bounded step', async (t) => {
  const c = await TestCluster.start(ids);
  t.after(() => c.stop());
  const leader = await c.leader();
  const name = ids.find((id) => id !== leader.id)!;
  const hello = { t: 'hello', member: name, memberId: c.node(name).status().memberId, cluster: 'flotilla', clusterId: c.node(name).status().clusterId };
  const others = [...c.members.values()].filter((m) => m.id !== name);
  const before = Math.max(...c.running().map((n) => n.status().term));
  for (const m of others) {
    const r = await dialAs(m.peerPort, name, [hello, heartbeat(name, m.id, Number.MAX_SAFE_INTEGER)]);
    assert.equal(r.answers[0]?.['t'], 'welcome', `${m.id} admits the member's own id`);
  }
  await sleep(300);
  for (const n of c.running()) assert.equal(n.status().term, before, `${n.id}: a term past 2^52 is refused as malformed`);
  // At the largest valid term, each frame moves its receiver one bounded step (2^20), and the
  // cluster follows it there; never to the end of the term space.
  for (const m of others) await dialAs(m.peerPort, name, [hello, heartbeat(name, m.id, MAX_TERM)]);
  await sleep(300);
  for (const n of c.running()) assert.ok(n.status().term <= before + others.length * (2 ** 20 + 3), `${n.id} at term ${n.status().term}: at most one step per frame`);
  await keepsElecting(c);
});

test('a member name with a member id the cluster does not know is refused; so is another cluster', async (t) => {
  const c = await TestCluster.start(ids);
  t.after(() => c.stop());
  await c.leader();
  const m1 = c.members.get('m1')!;
  const stranger = await dialAs(m1.peerPort, 'm2', [{ t: 'hello', member: 'm2', memberId: 'ffffffffffffffff', cluster: 'flotilla', clusterId: null }, heartbeat('m2', 'm1', 5)]);
  assert.equal(stranger.answers[0]?.['t'], 'refused');
  assert.equal(stranger.answers[0]?.['reason'], 'incarnation');
  const other = await dialAs(m1.peerPort, 'm2', [{ t: 'hello', member: 'm2', memberId: c.node('m2').status().memberId, cluster: 'another', clusterId: null }]);
  assert.equal(other.answers[0]?.['reason'], 'cluster');
  const lying = await dialAs(m1.peerPort, 'm2', [{ t: 'hello', member: 'm3', memberId: c.node('m3').status().memberId, cluster: 'flotilla', clusterId: null }]);
  assert.deepEqual(lying.answers, [], 'a hello naming another member than the credential is not answered');
  assert.notEqual(lying.closed, undefined);
  assert.ok(c.node('m1').status().term < 10);
  await c.converged();
});

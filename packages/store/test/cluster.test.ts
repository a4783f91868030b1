// Three (and more) StoreNodes in one process, on real sockets and real disks.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { KvError, type WatchEvent } from '@flotilla/store';
import { TestCluster, dec, enc, eventually, sleep } from './support.ts';

const clusters: TestCluster[] = [];
after(async () => {
  for (const c of clusters) await c.stop();
});

async function cluster(ids = ['m1', 'm2', 'm3'], overrides = {}): Promise<TestCluster> {
  const c = await TestCluster.start(ids, overrides);
  clusters.push(c);
  return c;
}

test('masters elect a leader; a client writes through any of them and reads linearizably', async () => {
  const c = await cluster();
  const leader = await c.leader();
  const client = c.client();
  const put = await client.put('/a', enc('1'));
  assert.ok(put.revision >= 2);
  const got = await client.get('/a');
  assert.equal(dec(got.kvs[0]!.value), '1');
  // Writes submitted on a follower are forwarded to the leader and answered there.
  const follower = c.running().find((n) => n !== leader)!;
  const r = await follower.write({ type: 'put', key: '/b', value: enc('2') });
  assert.ok('revision' in r);
  const fromFollower = await follower.range({ key: '/b' });
  assert.equal(dec(fromFollower.kvs[0]!.value), '2', 'a linearizable read on a follower sees a write it just acknowledged');
  await c.converged();
});

test('a write fenced to the leader\'s term lands; after the leader changes, it is refused everywhere', async () => {
  const c = await cluster();
  const leader = await c.leader();
  await eventually(() => leader.leadership().isLeader, 'the leader knows it leads');
  const term = leader.leadership().term;
  await leader.write({ type: 'put', key: '/fenced', value: enc('1') }, undefined, undefined, term);
  const follower = c.running().find((n) => n !== leader)!;
  await assert.rejects(follower.write({ type: 'put', key: '/fenced', value: enc('2') }, undefined, undefined, term), (e: KvError) => e.code === 'fenced');
  await c.stopMember(leader.id);
  const next = await c.leader();
  await eventually(() => next.leadership().isLeader, 'the new leader knows it leads');
  assert.ok(next.leadership().term > term);
  await assert.rejects(next.write({ type: 'put', key: '/fenced', value: enc('3') }, undefined, undefined, term), (e: KvError) => e.code === 'fenced' && /term \d+/.test(e.message));
  assert.equal(dec((await next.range({ key: '/fenced' })).kvs[0]!.value), '1');
});

test('the leader stops; another takes over; the stopped master comes back with everything', async () => {
  const c = await cluster();
  const client = c.client({ timeoutMs: 8000 });
  for (let i = 0; i < 20; i++) await client.put(`/k${i}`, enc(`v${i}`));
  const old = await c.leader();
  await c.stopMember(old.id);
  const next = await c.leader();
  assert.notEqual(next.id, old.id);
  for (let i = 20; i < 40; i++) await client.put(`/k${i}`, enc(`v${i}`));
  await c.startMember(old.id);
  await c.converged();
  const restarted = c.node(old.id);
  const all = await restarted.range({ key: '/k', prefix: true }, { serializable: true });
  assert.equal(all.count, 40, 'the restarted master has every acknowledged write');
});

test('a retried write with the same session is applied once', async () => {
  const c = await cluster();
  const leader = await c.leader();
  const session = { client: 'retrying-client', seq: 1, firstUnacked: 1 };
  const first = await leader.write({ type: 'put', key: '/once', value: enc('x') }, session);
  const again = await leader.write({ type: 'put', key: '/once', value: enc('x') }, session);
  assert.deepEqual(again, first);
  const kv = (await leader.range({ key: '/once' })).kvs[0]!;
  assert.equal(kv.version, 1, 'applied exactly once');
});

test('a watch sees every change in order, and resumes without a gap when its master goes away', async () => {
  const c = await cluster();
  const client = c.client({ timeoutMs: 8000 });
  const start = (await client.put('/w/0', enc('0'))).revision;
  const seen: { revision: number; events: readonly WatchEvent[] }[] = [];
  const w = client.watch({ key: '/w/', prefix: true, startRevision: start }, { onEvents: (revision, events) => seen.push({ revision, events }) });
  for (let i = 1; i <= 10; i++) await client.put(`/w/${i}`, enc(`${i}`));
  // Stop every master but the leader one by one is too much; stop the one serving the watch.
  for (const m of c.running()) if (m.status().watchers > 0) await c.stopMember(m.id);
  await c.leader();
  for (let i = 11; i <= 20; i++) await client.put(`/w/${i}`, enc(`${i}`));
  const deadline = Date.now() + 5000;
  while (seen.flatMap((s) => s.events).length < 21 && Date.now() < deadline) await sleep(20);
  w.cancel();
  const keys = seen.flatMap((s) => s.events.map((e) => e.kv.key));
  assert.deepEqual(keys, Array.from({ length: 21 }, (_, i) => `/w/${i}`), 'each change once, in order');
  const revisions = seen.map((s) => s.revision);
  assert.deepEqual(revisions, [...revisions].sort((a, b) => a - b));
});

test('a watch from a compacted revision ends with a clear compacted error', async () => {
  const c = await cluster();
  const client = c.client();
  for (let i = 0; i < 5; i++) await client.put('/c', enc(`${i}`));
  const rev = (await client.put('/c', enc('last'))).revision;
  await client.compact(rev - 1);
  const err = await new Promise<KvError>((resolve) => client.watch({ key: '/c', startRevision: 2 }, { onEvents: () => undefined, onError: resolve }));
  assert.equal(err.code, 'compacted');
  assert.match(err.message, /compacted/);
  await assert.rejects(client.get('/c', { revision: 2 }), (e: unknown) => e instanceof KvError && e.code === 'compacted');
});

test('a watch whose replayed history holds a revision too large for one frame ends with too-large; the master serves on', async () => {
  const c = await cluster(['solo']);
  const client = c.client({ timeoutMs: 8000 });
  const big = new Uint8Array(1500 * 1024).fill(7);
  await client.put('/big/1', big);
  await client.put('/big/2', big);
  // One revision overwriting both: with prevKv its events are about 6 MB, over the 4 MB frame.
  await client.txn([], [{ op: 'put', key: '/big/1', value: big }, { op: 'put', key: '/big/2', value: big }]);
  const err = await new Promise<KvError>((resolve) => client.watch({ key: '/big/', prefix: true, startRevision: 1, prevKv: true }, { onEvents: () => undefined, onError: resolve }));
  assert.equal(err.code, 'too-large');
  assert.match(err.message, /frame limit/);
  assert.equal(c.node('solo').status().watchers, 0, 'the failed watch is not left registered');
  // The same master still answers, and a watch that fits works.
  const put = await client.put('/small', enc('ok'));
  const events = await new Promise<readonly WatchEvent[]>((resolve) => {
    const w = client.watch({ key: '/small', startRevision: put.revision }, { onEvents: (_rev, e) => (w.cancel(), resolve(e)) });
  });
  assert.equal(dec(events[0]!.kv.value), 'ok');
});

test('keys attached to a lease are deleted when the leader sees it expire; keep-alives hold it', async () => {
  const c = await cluster();
  const client = c.client();
  const short = await client.leaseGrant(1);
  const kept = await client.leaseGrant(1);
  await client.put('/lease/short', enc('x'), { lease: short.id });
  await client.put('/lease/kept', enc('y'), { lease: kept.id });
  const deadline = Date.now() + 4000;
  while (Date.now() < deadline) {
    await client.leaseKeepAlive(kept.id);
    if ((await client.get('/lease/short')).count === 0) break;
    await sleep(200);
  }
  assert.equal((await client.get('/lease/short')).count, 0, 'expired and deleted');
  assert.equal((await client.get('/lease/kept')).count, 1, 'kept alive');
  await assert.rejects(client.put('/lease/late', enc('z'), { lease: short.id }), (e: unknown) => e instanceof KvError && e.code === 'lease-not-found');
});

test('masters are added and removed while the cluster serves writes; a new one catches up by snapshot', async () => {
  const c = await cluster(['m1', 'm2', 'm3'], { snapshotEvery: 50, keepEntries: 10 });
  const client = c.client({ timeoutMs: 10_000 });
  for (let i = 0; i < 120; i++) await client.put(`/s/${i % 30}`, enc(`${i}`));
  await c.define('m4');
  // The running masters were started before m4 was listed, so they admit it only once it has
  // been added: its start waits for that (as `flotilla master --join` does for `member add`).
  const joining = c.startMember('m4', { join: true });
  let writing = true;
  const background = (async () => {
    let i = 0;
    while (writing) await client.put(`/bg/${i++ % 10}`, enc(`${i}`));
  })();
  await client.admin({ op: 'member', action: 'addLearner', name: 'm4', peerUrl: c.peerUrl('m4') });
  const joiner = await joining;
  await client.admin({ op: 'member', action: 'promote', name: 'm4' });
  // The change is applied on the master that answered; others (and a new leader) apply it
  // moments later.
  const leader = await c.leader();
  await eventually(() => leader.status().voters.length === 4, 'the leader applies the promotion');
  assert.deepEqual([...leader.status().voters].sort(), ['m1', 'm2', 'm3', 'm4']);
  const victim = ['m1', 'm2', 'm3'].find((id) => id !== leader.id)!;
  await client.admin({ op: 'member', action: 'remove', name: victim });
  await c.stopMember(victim);
  writing = false;
  await background;
  await c.converged(10_000);
  assert.equal((await joiner.range({ key: '/s/', prefix: true }, { serializable: true })).count, 30);
  assert.ok(joiner.status().firstIndex > 1, 'the joiner started from a snapshot');
  assert.deepEqual([...(await c.leader()).status().voters].sort(), ['m1', 'm2', 'm3', 'm4'].filter((id) => id !== victim));
});

test('promoting a learner that cannot catch up fails with the leader\'s reason, within the time the client gave', async () => {
  const c = await cluster();
  const client = c.client({ timeoutMs: 10_000 });
  await client.put('/p', enc('1'));
  await c.define('m4');
  // m4 is added as a learner but never started: it cannot catch up.
  await client.admin({ op: 'member', action: 'addLearner', name: 'm4', peerUrl: c.peerUrl('m4') });
  const started = Date.now();
  await assert.rejects(client.admin({ op: 'member', action: 'promote', name: 'm4' }, 3000), (e: unknown) => {
    assert.ok(e instanceof KvError);
    assert.match(e.message, /learner m4 has entries up to \d+ of \d+ committed/);
    return true;
  });
  const took = Date.now() - started;
  assert.ok(took < 6000, `gave up after ${took} ms, not after the server's own 30 s`);
  await client.admin({ op: 'member', action: 'remove', name: 'm4' });
});

// The client side the leader-only loops use: LocalClient on the real API and store, the
// informer's cache and events, the work queue's guarantees, and write fencing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, Informer, WorkQueue, type ApiClient, type Pod } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';

const pod = (name: string, labels: Record<string, string> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '1'] }] },
});

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('LocalClient and Informer on the real API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ fenced: true });
  });
  after(() => api.stop());

  test('create, get, list by label, update with a stale resourceVersion (409), patch, delete', async () => {
    const c = api.client;
    const created = await c.create('pods', pod('a', { app: 'x' }));
    await c.create('pods', pod('b', { app: 'y' }));
    assert.equal((await c.get<Pod>('pods', 'default', 'a')).metadata.uid, created.metadata.uid);
    assert.deepEqual((await c.list<Pod>('pods', 'default', { labelSelector: 'app=x' })).items.map((p) => p.metadata.name), ['a']);
    const updated = await c.update('pods', { ...created, metadata: { ...created.metadata, labels: { app: 'z' } } });
    await assert.rejects(c.update('pods', { ...created, metadata: { ...created.metadata, labels: { app: 'w' } } }), (e: ApiError) => e.code === 409);
    const patched = await c.patch<Pod>('pods', 'default', 'a', { metadata: { annotations: { n: '1' } } });
    assert.equal(patched.metadata.labels?.['app'], 'z');
    assert.ok(Number(patched.metadata.resourceVersion) > Number(updated.metadata.resourceVersion));
    await c.delete('pods', 'default', 'b');
    await assert.rejects(c.get('pods', 'default', 'b'), (e: ApiError) => e.code === 404);
    await c.delete('pods', 'default', 'a');
  });

  test('an informer lists, then follows every change in order; stop() ends it', async () => {
    const c = api.client;
    await c.create('pods', pod('pre'));
    const seen: string[] = [];
    const inf = new Informer<Pod>(c, 'pods', { namespace: 'default' }).on({
      add: (p) => seen.push(`add ${p.metadata.name}`),
      update: (_, p) => seen.push(`update ${p.metadata.name} ${p.metadata.labels?.['v'] ?? ''}`),
      delete: (p) => seen.push(`delete ${p.metadata.name}`),
    });
    await inf.start();
    assert.ok(inf.hasSynced);
    assert.deepEqual(seen, ['add pre']);
    await c.create('pods', pod('n1'));
    await c.patch('pods', 'default', 'n1', { metadata: { labels: { v: '2' } } });
    await c.delete('pods', 'default', 'pre');
    await until('the informer saw three changes', () => seen.length === 4);
    assert.deepEqual(seen, ['add pre', 'add n1', 'update n1 2', 'delete pre']);
    assert.deepEqual(inf.list().map((p) => p.metadata.name), ['n1']);
    assert.deepEqual(inf.listIn('default').map((p) => p.metadata.name), ['n1'], 'the namespace index follows deletes too');
    assert.deepEqual(inf.listIn('kube-system'), []);
    assert.equal(inf.get('default', 'n1')?.metadata.labels?.['v'], '2');
    inf.stop();
    await c.create('pods', pod('after-stop'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, 4, 'nothing after stop');
    await c.delete('pods', 'default', 'n1');
    await c.delete('pods', 'default', 'after-stop');
  });

  test('a binding for another uid is refused; the right one binds once', async () => {
    const c = api.client;
    const p = await c.create('pods', pod('bound'));
    await assert.rejects(c.bind('default', 'bound', 'w1', 'some-other-uid'), (e: ApiError) => e.code === 409 && /UID in precondition/.test(e.message));
    assert.equal((await c.get<Pod>('pods', 'default', 'bound')).spec.nodeName, undefined);
    await c.bind('default', 'bound', 'w1', p.metadata.uid);
    const got = await c.get<Pod>('pods', 'default', 'bound');
    assert.equal(got.spec.nodeName, 'w1');
    assert.ok(got.status?.conditions?.some((x) => x.type === 'PodScheduled' && x.status === 'True'));
    await assert.rejects(c.bind('default', 'bound', 'w2', p.metadata.uid), (e: ApiError) => e.code === 409 && /already assigned to node "w1"/.test(e.message));
    await c.delete('pods', 'default', 'bound', { gracePeriodSeconds: 0 });
  });

  test('removing the last finalizer of an object being deleted deletes it', async () => {
    const c = api.client;
    const p = pod('held');
    p.metadata.finalizers = ['example.com/hold', 'example.com/other'];
    await c.create('pods', p);
    await c.delete('pods', 'default', 'held');
    const marked = await c.get<Pod>('pods', 'default', 'held');
    assert.ok(marked.metadata.deletionTimestamp !== undefined, 'kept while finalizers remain');
    await c.patch('pods', 'default', 'held', [{ op: 'remove', path: '/metadata/finalizers/0' }], 'json');
    assert.deepEqual((await c.get<Pod>('pods', 'default', 'held')).metadata.finalizers, ['example.com/other'], 'one finalizer left: still there');
    await c.patch('pods', 'default', 'held', { metadata: { finalizers: null } });
    await assert.rejects(c.get('pods', 'default', 'held'), (e: ApiError) => e.code === 404);
  });

  test('writes fenced to a term that is not the current one are refused and change nothing', async () => {
    const term = api.node.leadership().term;
    const stale = api.clientWith({ fence: () => term - 1 });
    await assert.rejects(stale.create('pods', pod('fenced')), (e: ApiError) => e.code === 503 && /no longer leads/.test(e.message));
    await assert.rejects(api.client.get('pods', 'default', 'fenced'), (e: ApiError) => e.code === 404);
    const current = api.clientWith({ fence: () => term });
    await current.create('pods', pod('fenced'));
    await current.delete('pods', 'default', 'fenced');
  });
});

test('an informer whose API server shuts down stops instead of retrying forever', async () => {
  const api = await startTestApi();
  const inf = new Informer<Pod>(api.client, 'pods');
  await inf.start();
  assert.ok(inf.running);
  await api.stop();
  await until('the informer gave up', () => !inf.running);
});

test('an informer stopped while its watch is opening ends that watch', async () => {
  let opened!: () => void;
  const watchCalled = new Promise<void>((r) => (opened = r));
  let watchStopped = false;
  const fake = {
    list: async () => ({ items: [], resourceVersion: '5' }),
    watch: async () => {
      opened();
      await new Promise((r) => setTimeout(r, 30));
      return () => {
        watchStopped = true;
      };
    },
  } as unknown as ApiClient;
  const inf = new Informer<Pod>(fake, 'pods');
  const started = inf.start();
  await watchCalled;
  inf.stop();
  await started;
  assert.ok(watchStopped, 'the watch that opened after stop() was ended');
});

test('a handler that throws does not keep the other handlers from the change', async () => {
  const api = await startTestApi();
  try {
    const seen: string[] = [];
    const inf = new Informer<Pod>(api.client, 'pods', { namespace: 'default' })
      .on({ add: () => { throw new Error('a broken handler'); } })
      .on({ add: (p) => seen.push(p.metadata.name!) });
    await inf.start();
    await api.client.create('pods', pod('one'));
    await api.client.create('pods', pod('two'));
    await until('both adds reached the second handler', () => seen.length === 2);
    assert.deepEqual(seen, ['one', 'two']);
    inf.stop();
  } finally {
    await api.stop();
  }
});

describe('WorkQueue', () => {
  test('a key queued many times runs once; one added while it runs runs again after', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let concurrent = 0;
    let maxConcurrent = 0;
    const q = new WorkQueue(async (key) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      runs.push(key);
      if (runs.length === 1) await gate;
      concurrent--;
    });
    q.add('k');
    q.add('k');
    q.add('k');
    await new Promise((r) => setTimeout(r, 10));
    q.add('k'); // while the first run waits on the gate
    q.add('k');
    release();
    await new Promise((r) => setTimeout(r, 20));
    await q.idle();
    assert.deepEqual(runs, ['k', 'k']);
    assert.equal(maxConcurrent, 1, 'never two runs of one key at once');
  });

  test('of two delayed adds of one key, the earlier one wins', async () => {
    const runs: number[] = [];
    const q = new WorkQueue(async () => {
      runs.push(Date.now());
    });
    const t0 = Date.now();
    q.addAfter('k', 2000);
    q.addAfter('k', 20);
    await until('the key ran', () => runs.length === 1, 1000);
    assert.ok(runs[0]! - t0 < 1000);
    q.stop();
  });

  test('a failing key is retried with doubling delays; success forgets its failures', async () => {
    const at: number[] = [];
    const q = new WorkQueue(
      async () => {
        at.push(Date.now());
        if (at.length < 4) throw new Error('not yet');
      },
      { baseDelayMs: 20, maxDelayMs: 1000 },
    );
    q.add('k');
    await until('four attempts', () => at.length === 4, 3000);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    assert.ok(gaps[0]! >= 18 && gaps[1]! >= 38 && gaps[2]! >= 78, `backoff gaps ${gaps.join(',')}`);
    assert.equal(q.backoff(0), 20);
    assert.equal(q.backoff(10), 1000, 'capped');
    q.stop();
  });
});

// The Scheduler against the real API on a real store: nodes and pods are created through the
// client, the scheduler binds through pods/binding. Spreading, resource accounting under a
// burst, the unschedulable message and recovery, a restart mid-way, a rival bind (409), a
// failed bind, and pods it must leave alone.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ApiError, InformerFactory, parseQuantity, type ApiClient, type Node, type Pod } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { Scheduler, type SchedulerOptions } from '../src/index.ts';
import { node, pod, SteppingClient, until } from './helpers.ts';

interface Running {
  scheduler: Scheduler;
  informers: InformerFactory;
}

describe('Scheduler on the real API', () => {
  let api: TestApi;
  const running: Running[] = [];

  beforeEach(async () => {
    api = await startTestApi();
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.scheduler.stop();
      r.informers.stop();
      await r.scheduler.settled();
    }
    await api.stop();
  });

  async function startScheduler(client: ApiClient = api.client, extra: Partial<SchedulerOptions> = {}): Promise<Scheduler> {
    const informers = new InformerFactory(client, silentLogger);
    const scheduler = new Scheduler({ client, informers, logger: silentLogger, podInitialBackoffMs: 50, podMaxBackoffMs: 400, ...extra });
    await informers.start();
    scheduler.start();
    running.push({ scheduler, informers });
    return scheduler;
  }

  const pods = async (): Promise<Pod[]> => (await api.client.list<Pod>('pods', 'default')).items;
  const bound = async (): Promise<Pod[]> => (await pods()).filter((p) => p.spec.nodeName !== undefined && p.spec.nodeName !== '');
  const scheduledCondition = (p: Pod) => p.status?.conditions?.find((c) => c.type === 'PodScheduled');

  /** Every node's bound requests within its allocatable. */
  async function assertNoOvercommit(): Promise<void> {
    const nodes = (await api.client.list<Node>('nodes', undefined)).items;
    const all = await bound();
    for (const n of nodes) {
      const mine = all.filter((p) => p.spec.nodeName === n.metadata.name);
      for (const r of ['cpu', 'memory']) {
        const sum = mine.reduce((s, p) => s + parseQuantity(p.spec.containers[0]!.resources?.requests?.[r] ?? '0'), 0);
        assert.ok(sum <= parseQuantity(n.status!.allocatable![r]!) + 1e-9, `node ${n.metadata.name} overcommitted on ${r}: ${sum}`);
      }
    }
  }

  test('pods of one owner are spread evenly across nodes', async () => {
    for (const n of ['n1', 'n2', 'n3']) await api.client.create('nodes', node(n));
    await startScheduler();
    await Promise.all(Array.from({ length: 9 }, (_, i) => api.client.create('pods', pod(`web-${i}`, { owner: 'web' }))));
    await until('all nine are bound', async () => (await bound()).length === 9);
    const perNode = new Map<string, number>();
    for (const p of await bound()) perNode.set(p.spec.nodeName!, (perNode.get(p.spec.nodeName!) ?? 0) + 1);
    assert.deepEqual([...perNode.entries()].sort(), [['n1', 3], ['n2', 3], ['n3', 3]]);
    for (const p of await bound()) assert.equal(scheduledCondition(p)?.status, 'True');
  });

  test('a burst of pods never overcommits a node; the rest are told why', async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4']) await api.client.create('nodes', node(n, { cpu: '2', memory: '4Gi' }));
    await startScheduler();
    // 4 nodes × 2 cpu / 500m = 16 pods fit; memory (4 × 512Mi) is never the limit.
    await Promise.all(Array.from({ length: 40 }, (_, i) => api.client.create('pods', pod(`burst-${i}`, { cpu: '500m', memory: '512Mi' }))));
    await until('16 bound and 24 marked unschedulable', async () => {
      const all = await pods();
      return all.filter((p) => p.spec.nodeName !== undefined).length === 16 && all.filter((p) => scheduledCondition(p)?.status === 'False').length === 24;
    });
    await assertNoOvercommit();
    for (const p of await pods()) {
      if (p.spec.nodeName === undefined) assert.equal(scheduledCondition(p)?.message, '0/4 nodes are available: 4 Insufficient cpu.');
    }
  });

  test('a pod that fits nowhere gets PodScheduled=False in kube-scheduler words, once; a suitable node lets it run', async () => {
    await api.client.create('nodes', node('n1', { memory: '8Gi', taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }));
    await api.client.create('nodes', node('n2', { memory: '1Gi' }));
    await api.client.create('nodes', node('n3', { memory: '1Gi' }));
    const scheduler = await startScheduler();
    await api.client.create('pods', pod('big', { memory: '2Gi' }));
    const message = '0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient memory.';
    let marked: Pod | undefined;
    await until('the pod is marked unschedulable', async () => {
      marked = await api.client.get<Pod>('pods', 'default', 'big');
      return scheduledCondition(marked)?.status === 'False';
    });
    assert.deepEqual({ ...scheduledCondition(marked!), lastTransitionTime: undefined }, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: undefined });
    // A node change that does not help: the pod is tried again, and the same answer is not rewritten.
    const attempts = scheduler.metrics.attempts;
    await api.client.patch('nodes', undefined, 'n2', { metadata: { labels: { touched: 'yes' } } });
    await until('the pod was tried again', () => scheduler.metrics.attempts > attempts);
    await scheduler.settled();
    assert.equal((await api.client.get<Pod>('pods', 'default', 'big')).metadata.resourceVersion, marked!.metadata.resourceVersion, 'an unchanged condition is not written again');
    await api.client.create('nodes', node('n4', { memory: '4Gi' }));
    await until('the pod is bound to the new node', async () => (await api.client.get<Pod>('pods', 'default', 'big')).spec.nodeName === 'n4');
    assert.equal(scheduledCondition(await api.client.get<Pod>('pods', 'default', 'big'))?.status, 'True');
  });

  test('stopped mid-way and replaced by a new scheduler: no node is double-booked and the rest are bound', async () => {
    for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) await api.client.create('nodes', node(n, { cpu: '4' }));
    // The first scheduler's binds succeed four times, then fail (it would retry them with
    // backoff): it is stopped with most of the work undone, whatever the machine's speed.
    const held = new SteppingClient(api.client);
    let allowed = 4;
    held.onBind = async (ns, name, nodeName, uid, inner) => {
      if (allowed-- <= 0) throw new ApiError('ServiceUnavailable', 'held back by the test');
      await inner.bind(ns, name, nodeName, uid);
    };
    const first = await startScheduler(held, { maxBindsInFlight: 2 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => api.client.create('pods', pod(`r-${i}`, { cpu: '1', owner: 'r' }))));
    await until('four pods are bound', async () => (await bound()).length === 4);
    first.stop();
    await first.settled(); // a deposed leader's writes are resolved before a new one lists (Raft fencing)
    const boundByFirst = (await bound()).length;
    assert.equal(boundByFirst, 4, 'the first scheduler stopped mid-way');
    // While no scheduler runs (events nobody sees): one bound pod goes, one pending pod goes.
    const victim = (await bound())[0]!;
    await api.client.delete('pods', 'default', victim.metadata.name!, { gracePeriodSeconds: 0 });
    const pendingVictim = (await pods()).find((p) => p.spec.nodeName === undefined)!;
    await api.client.delete('pods', 'default', pendingVictim.metadata.name!);
    await startScheduler();
    await until('20 bound (5 nodes × 4 cpu) and the other 8 marked unschedulable', async () => {
      const all = await pods();
      return all.filter((p) => p.spec.nodeName !== undefined).length === 20 && all.filter((p) => scheduledCondition(p)?.status === 'False').length === 8;
    });
    await assertNoOvercommit();
  });

  test('a rival bind (409) is not retried and its placement is accounted; a failed bind is retried', async () => {
    await api.client.create('nodes', node('n1', { cpu: '1' }));
    await api.client.create('nodes', node('n2', { cpu: '1' }));
    const client = new SteppingClient(api.client);
    let chosen = '';
    let failedOnce = false;
    client.onBind = async (ns, name, nodeName, uid, inner) => {
      if (name === 'race') {
        // Someone else binds it to the other node first: our bind gets 409.
        chosen = nodeName;
        await inner.bind(ns, name, nodeName === 'n1' ? 'n2' : 'n1', uid);
      }
      if (name === 'flaky' && !failedOnce) {
        failedOnce = true;
        throw new ApiError('ServiceUnavailable', 'the store is busy');
      }
      await inner.bind(ns, name, nodeName, uid);
    };
    await startScheduler(client);
    await api.client.create('pods', pod('race', { cpu: '1' }));
    await until('race is bound by the rival', async () => (await api.client.get<Pod>('pods', 'default', 'race')).spec.nodeName !== undefined);
    const rivalNode = (await api.client.get<Pod>('pods', 'default', 'race')).spec.nodeName!;
    assert.notEqual(rivalNode, chosen);
    // The next pod must go to the node the scheduler had picked (now free again), not the rival's.
    await api.client.create('pods', pod('flaky', { cpu: '1' }));
    await until('flaky is bound after a failed first bind', async () => (await api.client.get<Pod>('pods', 'default', 'flaky')).spec.nodeName !== undefined);
    assert.equal((await api.client.get<Pod>('pods', 'default', 'flaky')).spec.nodeName, chosen);
    assert.deepEqual(client.binds.filter((n) => n === 'flaky').length, 2);
    await api.client.create('pods', pod('third', { cpu: '1' }));
    await until('third is unschedulable', async () => scheduledCondition(await api.client.get<Pod>('pods', 'default', 'third'))?.status === 'False');
    assert.equal(scheduledCondition(await api.client.get<Pod>('pods', 'default', 'third'))?.message, '0/2 nodes are available: 2 Insufficient cpu.');
    assert.equal(client.binds.filter((n) => n === 'race').length, 1, 'the 409 was not retried');
    await assertNoOvercommit();
  });

  test('a pod deleted while pending, or meant for another scheduler, is not bound', async () => {
    const client = new SteppingClient(api.client);
    await startScheduler(client);
    await api.client.create('pods', pod('held', { nodeSelector: { disk: 'ssd' }, finalizers: ['example.com/hold'] }));
    await api.client.create('pods', pod('other', { nodeSelector: { disk: 'ssd' }, schedulerName: 'my-scheduler' }));
    await until('held is marked unschedulable', async () => scheduledCondition(await api.client.get<Pod>('pods', 'default', 'held'))?.message === 'no nodes available to schedule pods');
    await api.client.delete('pods', 'default', 'held');
    assert.ok((await api.client.get<Pod>('pods', 'default', 'held')).metadata.deletionTimestamp !== undefined, 'kept by its finalizer');
    await api.client.create('nodes', node('ssd-1', { labels: { disk: 'ssd' } }));
    await api.client.create('pods', pod('after', { nodeSelector: { disk: 'ssd' } }));
    await until('a pod created afterwards is bound', async () => (await api.client.get<Pod>('pods', 'default', 'after')).spec.nodeName === 'ssd-1');
    assert.equal((await api.client.get<Pod>('pods', 'default', 'held')).spec.nodeName, undefined);
    assert.equal((await api.client.get<Pod>('pods', 'default', 'other')).spec.nodeName, undefined);
    assert.deepEqual(client.binds, ['after']);
  });
});

// The ReplicaSet controller against the real API on a real store, with no agents: pods stay
// unscheduled, and the test plays the kubelet by writing pod status (Running, Ready=True).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InformerFactory, type ApiClient, type KubeObject, type Pod, type ReplicaSet, type WatchCallbacks } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { ReplicaSetController, type ReplicaSetControllerOptions } from '../src/replicaset.ts';
import { sortPodsForDeletion } from '../src/pod-util.ts';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A client that can hold back watch events of one resource (a slow watch) and gate creates. */
class InterposedClient implements ApiClient {
  private held: (() => void)[] = [];
  private holding = false;
  creates = 0;
  /** Creates after this many wait for openCreates(). */
  createLimit = Number.POSITIVE_INFINITY;
  private createWaiters: (() => void)[] = [];

  constructor(
    private readonly inner: ApiClient,
    private readonly slowResource: string,
  ) {}

  holdWatch(): void {
    this.holding = true;
  }

  releaseWatch(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const f of held) f();
  }

  openCreates(): void {
    this.createLimit = Number.POSITIVE_INFINITY;
    for (const w of this.createWaiters.splice(0)) w();
  }

  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T> {
    return this.inner.get(resource, namespace, name);
  }
  list: ApiClient['list'] = (resource, namespace, options) => this.inner.list(resource, namespace, options);
  async create<T extends KubeObject>(resource: string, obj: T): Promise<T> {
    if (resource === 'pods' && this.creates >= this.createLimit) await new Promise<void>((r) => this.createWaiters.push(r));
    if (resource === 'pods') this.creates++;
    return this.inner.create(resource, obj);
  }
  update: ApiClient['update'] = (resource, obj, sub) => this.inner.update(resource, obj, sub);
  patch: ApiClient['patch'] = (resource, namespace, name, patch, type, sub) => this.inner.patch(resource, namespace, name, patch, type, sub);
  delete: ApiClient['delete'] = (resource, namespace, name, options) => this.inner.delete(resource, namespace, name, options);
  bind: ApiClient['bind'] = (namespace, name, node, uid) => this.inner.bind(namespace, name, node, uid);
  watch<T extends KubeObject>(resource: string, namespace: string | undefined, rv: string, cb: WatchCallbacks<T>, options?: Parameters<ApiClient['watch']>[4]): Promise<() => void> {
    if (resource !== this.slowResource) return this.inner.watch(resource, namespace, rv, cb, options);
    return this.inner.watch<T>(resource, namespace, rv, {
      event: (type, obj) => (this.holding ? this.held.push(() => cb.event(type, obj)) : cb.event(type, obj)),
      end: (err) => (this.holding ? this.held.push(() => cb.end(err)) : cb.end(err)),
    }, options);
  }
}

interface Running {
  readonly controller: ReplicaSetController;
  stop(): void;
}

async function runController(client: ApiClient, now: () => number = Date.now, options: ReplicaSetControllerOptions = {}): Promise<Running> {
  const informers = new InformerFactory(client, silentLogger);
  const controller = new ReplicaSetController({ client, informers, logger: silentLogger, now }, options);
  await informers.start();
  controller.start();
  return {
    controller,
    stop: () => {
      controller.stop();
      informers.stop();
    },
  };
}

function replicaSet(namespace: string, name: string, replicas: number, labels: Record<string, string>): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels: { ...labels, tier: 'web' } }, spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '100'] }] } },
    },
  };
}

function orphanPod(namespace: string, name: string, labels: Record<string, string>): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { containers: [{ name: 'c', image: 'process' }] } };
}

async function pods(client: ApiClient, namespace: string, selector: string): Promise<Pod[]> {
  return (await client.list<Pod>('pods', namespace, { labelSelector: selector })).items;
}

async function activePods(client: ApiClient, namespace: string, selector: string): Promise<Pod[]> {
  return (await pods(client, namespace, selector)).filter((p) => p.metadata.deletionTimestamp === undefined && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded');
}

/** What a kubelet does when a pod's containers pass their readiness probe. */
async function markReady(client: ApiClient, pod: Pod): Promise<void> {
  for (;;) {
    const cur = await client.get<Pod>('pods', pod.metadata.namespace, pod.metadata.name ?? '');
    const next: Pod = { ...cur, status: { ...cur.status, phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }] } };
    try {
      await client.update('pods', next, 'status');
      return;
    } catch (e) {
      if ((e as { reason?: string }).reason !== 'Conflict') throw e;
    }
  }
}

async function markAllReady(client: ApiClient, namespace: string, selector: string): Promise<void> {
  for (const p of await activePods(client, namespace, selector)) await markReady(client, p);
}

async function getRs(client: ApiClient, namespace: string, name: string): Promise<ReplicaSet> {
  return client.get<ReplicaSet>('replicasets', namespace, name);
}

let nsCount = 0;
async function namespace(client: ApiClient): Promise<string> {
  const name = `rs-${++nsCount}`;
  await client.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

describe('ReplicaSet controller on the real API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.stop());

  test('creates spec.replicas pods from the template, owned by the RS, and reports status', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const run = await runController(c);
    t.after(() => run.stop());
    const rs = await c.create('replicasets', replicaSet(ns, 'web', 3, { app: 'web' }));
    await until('3 pods exist', async () => (await pods(c, ns, 'app=web')).length === 3);
    for (const p of await pods(c, ns, 'app=web')) {
      assert.match(p.metadata.name ?? '', /^web-[a-z0-9]{5}$/);
      assert.deepEqual(p.metadata.labels, { app: 'web', tier: 'web' });
      assert.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    }
    await until('status counts 3 replicas, none ready', async () => {
      const s = (await getRs(c, ns, 'web')).status;
      return s?.replicas === 3 && s.readyReplicas === 0 && s.fullyLabeledReplicas === 3 && s.observedGeneration === 1;
    });
    await markAllReady(c, ns, 'app=web');
    await until('status counts 3 ready and available', async () => {
      const s = (await getRs(c, ns, 'web')).status;
      return s?.readyReplicas === 3 && s.availableReplicas === 3;
    });
    await run.controller.idle();
    assert.equal((await pods(c, ns, 'app=web')).length, 3, 'no more than spec.replicas');
  });

  test('minReadySeconds: ready pods become available only after that long', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    let offset = 0;
    const run = await runController(c, () => Date.now() + offset);
    t.after(() => run.stop());
    await c.create('replicasets', { ...replicaSet(ns, 'slow', 2, { app: 'slow' }), spec: { ...replicaSet(ns, 'slow', 2, { app: 'slow' }).spec, minReadySeconds: 600 } });
    await until('2 pods', async () => (await pods(c, ns, 'app=slow')).length === 2);
    await markAllReady(c, ns, 'app=slow');
    await until('ready but not available', async () => {
      const s = (await getRs(c, ns, 'slow')).status;
      return s?.readyReplicas === 2 && s.availableReplicas === 0;
    });
    offset = 601_000;
    await c.patch('replicasets', ns, 'slow', { metadata: { annotations: { poke: '1' } } });
    await until('available after minReadySeconds', async () => (await getRs(c, ns, 'slow')).status?.availableReplicas === 2);
  });

  test('replaces a deleted pod, a Failed pod (deleting it), and a pod being deleted with its node', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const run = await runController(c);
    t.after(() => run.stop());
    await c.create('replicasets', replicaSet(ns, 'rep', 3, { app: 'rep' }));
    await until('3 pods', async () => (await pods(c, ns, 'app=rep')).length === 3);
    const [a, b, d] = await pods(c, ns, 'app=rep');

    await c.delete('pods', ns, a!.metadata.name!);
    await until('a replacement for the deleted pod', async () => {
      const names = (await pods(c, ns, 'app=rep')).map((p) => p.metadata.name);
      return names.length === 3 && !names.includes(a!.metadata.name);
    });

    await c.update('pods', { ...b!, status: { ...b!.status, phase: 'Failed' } }, 'status');
    await until('the Failed pod deleted and replaced', async () => {
      const all = await pods(c, ns, 'app=rep');
      return all.length === 3 && all.every((p) => p.metadata.name !== b!.metadata.name);
    });

    // A pod on a node that is lost: bound, then deleted gracefully (kept with a deletionTimestamp).
    await c.bind(ns, d!.metadata.name!, 'lost-node');
    await c.delete('pods', ns, d!.metadata.name!, { gracePeriodSeconds: 300 });
    await until('a replacement while the terminating pod is still there', async () => {
      const all = await pods(c, ns, 'app=rep');
      const terminating = all.filter((p) => p.metadata.deletionTimestamp !== undefined);
      return all.length === 4 && terminating.length === 1 && terminating[0]!.metadata.name === d!.metadata.name;
    });
    await until('status counts only the 3 active pods', async () => (await getRs(c, ns, 'rep')).status?.replicas === 3);
  });

  test('scales down preferring not-ready pods, and up again', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const run = await runController(c);
    t.after(() => run.stop());
    await c.create('replicasets', replicaSet(ns, 'sc', 5, { app: 'sc' }));
    await until('5 pods', async () => (await pods(c, ns, 'app=sc')).length === 5);
    const all = await pods(c, ns, 'app=sc');
    const ready = all.slice(0, 2);
    for (const p of ready) await markReady(c, p);
    await until('2 ready counted', async () => (await getRs(c, ns, 'sc')).status?.readyReplicas === 2);
    const cur = await getRs(c, ns, 'sc');
    await c.update('replicasets', { ...cur, spec: { ...cur.spec, replicas: 2 } });
    await until('2 pods left', async () => (await pods(c, ns, 'app=sc')).length === 2);
    assert.deepEqual((await pods(c, ns, 'app=sc')).map((p) => p.metadata.name).sort(), ready.map((p) => p.metadata.name).sort(), 'the ready pods were kept');
    await c.patch('replicasets', ns, 'sc', { spec: { replicas: 4 } });
    await until('4 pods again', async () => (await pods(c, ns, 'app=sc')).length === 4);
  });

  test('the deletion order: unassigned, then not ready, then newer first', () => {
    const mk = (name: string, o: { node?: string; ready?: boolean; created: string }): Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, creationTimestamp: o.created },
      spec: { containers: [], ...(o.node === undefined ? {} : { nodeName: o.node }) },
      status: o.ready === true ? { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } : { phase: 'Pending' },
    });
    const order = sortPodsForDeletion([
      mk('old-ready-assigned', { node: 'n1', ready: true, created: '2024-01-01T00:00:00Z' }),
      mk('new-ready-assigned', { node: 'n2', ready: true, created: '2024-01-02T00:00:00Z' }),
      mk('assigned-not-ready', { node: 'n3', created: '2024-01-01T00:00:00Z' }),
      mk('unassigned', { created: '2023-01-01T00:00:00Z' }),
    ]).map((p) => p.metadata.name);
    assert.deepEqual(order, ['unassigned', 'assigned-not-ready', 'new-ready-assigned', 'old-ready-assigned']);
    assert.notDeepEqual(order, ['old-ready-assigned', 'new-ready-assigned', 'assigned-not-ready', 'unassigned']);
  });

  test('adopts a matching orphan, leaves pods of other controllers alone, releases a pod that stops matching', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    await c.create('pods', orphanPod(ns, 'orphan', { app: 'ad' }));
    const foreign = orphanPod(ns, 'foreign', { app: 'ad' });
    foreign.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'other', uid: '00000000-0000-0000-0000-000000000001', controller: true }];
    await c.create('pods', foreign);
    const run = await runController(c);
    t.after(() => run.stop());
    const rs = await c.create('replicasets', replicaSet(ns, 'ad', 2, { app: 'ad' }));
    await until('the orphan adopted and one pod created', async () => {
      const owned = (await pods(c, ns, 'app=ad')).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === rs.metadata.uid && r.controller === true));
      return owned.length === 2 && owned.some((p) => p.metadata.name === 'orphan');
    });
    const f = await c.get<Pod>('pods', ns, 'foreign');
    assert.equal(f.metadata.ownerReferences?.[0]?.name, 'other', 'a pod another controller owns is not adopted');

    await c.patch('pods', ns, 'orphan', { metadata: { labels: { app: 'gone' } } });
    await until('the relabelled pod released and replaced', async () => {
      const released = await c.get<Pod>('pods', ns, 'orphan');
      const owned = (await pods(c, ns, 'app=ad')).filter((p) => p.metadata.ownerReferences?.some((r) => r.uid === rs.metadata.uid));
      return released.metadata.ownerReferences === undefined && owned.length === 2;
    });
  });

  test('a slow pod watch does not cause double creation; an expectation lost for 5 minutes heals (and is what prevented it)', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const slow = new InterposedClient(c, 'pods');
    let offset = 0;
    const run = await runController(slow, () => Date.now() + offset);
    t.after(() => run.stop());
    slow.holdWatch();
    await c.create('replicasets', replicaSet(ns, 'dbl', 3, { app: 'dbl' }));
    await until('3 pods in the API', async () => (await pods(c, ns, 'app=dbl')).length === 3);
    // Syncs run again (RS changes) while the informer still sees no pod at all.
    for (let i = 0; i < 3; i++) {
      await c.patch('replicasets', ns, 'dbl', { metadata: { annotations: { poke: String(i) } } });
      await new Promise((r) => setImmediate(r));
      await run.controller.idle();
    }
    await until('the RS informer saw the last poke', async () => (await getRs(c, ns, 'dbl')).metadata.annotations?.['poke'] === '2');
    await run.controller.idle();
    assert.equal((await pods(c, ns, 'app=dbl')).length, 3, 'expectations held back a second round of creates');

    // The negative case: once the expectations have expired, the blind controller creates again.
    offset = 6 * 60 * 1000;
    await c.patch('replicasets', ns, 'dbl', { metadata: { annotations: { poke: 'late' } } });
    await until('a second round of creates', async () => (await pods(c, ns, 'app=dbl')).length === 6);
    slow.releaseWatch();
    await until('back to 3 pods once the watch caught up', async () => (await pods(c, ns, 'app=dbl')).length === 3);
  });

  test('a controller stopped in the middle of a sync, then a new instance: exactly spec.replicas pods ever created', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const gated = new InterposedClient(c, 'none');
    gated.createLimit = 3;
    const first = await runController(gated);
    t.after(() => first.stop());
    await c.create('replicasets', replicaSet(ns, 'rst', 10, { app: 'rst' }));
    // Slow start: batches of 1 and 2 went through; the batch of 4 is blocked in flight.
    await until('3 pods created and the next batch waiting', async () => (await pods(c, ns, 'app=rst')).length === 3);
    first.stop();
    gated.openCreates();
    await first.controller.idle();
    const afterFirst = (await pods(c, ns, 'app=rst')).length;
    assert.equal(afterFirst, 7, 'the batch in flight landed; no new batch began after stop()');
    const counting = new InterposedClient(c, 'none');
    const second = await runController(counting);
    t.after(() => second.stop());
    await until('10 pods', async () => (await pods(c, ns, 'app=rst')).length === 10);
    await until('status says 10', async () => (await getRs(c, ns, 'rst')).status?.replicas === 10);
    await second.controller.idle();
    assert.equal(gated.creates + counting.creates, 10, 'every pod was created once');
    assert.equal((await pods(c, ns, 'app=rst')).length, 10);
  });
});

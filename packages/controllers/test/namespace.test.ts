// Namespace termination (issue 12) against the real API on a real store: deleting a namespace
// marks it Terminating while its `kubernetes` finalizer holds it, new content is refused, the
// namespace controller deletes everything in it (waiting for grace periods and finalizers,
// reporting conditions), then finalizes it, and nothing goes on writing afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, encodeObject, InformerFactory, type ApiClient, type Deployment, type KubeObject, type Namespace, type Pod } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import * as controllers from '@flotilla/controllers';
import { DeploymentController, GarbageCollector, ReplicaSetController, type Controller } from '@flotilla/controllers';

// (Looked up, not imported by name, so that on a commit without it the tests still run and fail on behaviour.)
const NamespaceController = (controllers as Partial<typeof controllers>).NamespaceController;

type NamespaceWithConditions = Namespace & { status?: { phase?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] } };

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function gone(client: ApiClient, resource: string, namespace: string | undefined, name: string): Promise<boolean> {
  try {
    await client.get(resource, namespace, name);
    return false;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return true;
    throw err;
  }
}

async function revision(client: ApiClient): Promise<number> {
  return Number((await client.list('namespaces')).resourceVersion);
}

function deployment(namespace: string, name: string, replicas: number): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'i', command: ['sleep', '1000'] }] } } },
  };
}

function pod(namespace: string, name: string, extra: { nodeName?: string; finalizers?: string[] } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, ...(extra.finalizers === undefined ? {} : { finalizers: extra.finalizers }) },
    spec: { containers: [{ name: 'c', image: 'i' }], ...(extra.nodeName === undefined ? {} : { nodeName: extra.nodeName }) },
  };
}

function condition(ns: NamespaceWithConditions, type: string): { status: string; reason?: string; message?: string } | undefined {
  return ns.status?.conditions?.find((c) => c.type === type);
}

async function startLoops(client: ApiClient, withNamespaceController = true): Promise<() => void> {
  const informers = new InformerFactory(client, silentLogger);
  const ctx = { client, informers, logger: silentLogger, now: Date.now };
  const loops: Controller[] = [new ReplicaSetController(ctx), new DeploymentController(ctx), new GarbageCollector(ctx)];
  // (A commit without one runs without it: the tests then fail on what they check.)
  if (withNamespaceController && NamespaceController !== undefined) loops.push(new NamespaceController(ctx, { recheckMs: 1000 }));
  await informers.start();
  for (const l of loops) l.start();
  return () => {
    for (const l of loops) l.stop();
    informers.stop();
  };
}

describe('namespace termination', () => {
  let api: TestApi;
  let c: ApiClient;
  let stopLoops: () => void;
  before(async () => {
    api = await startTestApi();
    c = api.client;
    stopLoops = await startLoops(c);
  });
  after(async () => {
    stopLoops();
    await api.stop();
  });

  test('a new namespace is Active with the kubernetes finalizer', async () => {
    const ns = await c.create<Namespace>('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fresh' }, status: { phase: 'Terminating' } });
    assert.deepEqual(ns.spec?.finalizers, ['kubernetes']);
    assert.equal(ns.status?.phase, 'Active');
    const own = await c.create<Namespace>('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fresh-2' }, spec: { finalizers: ['example.com/mine'] } });
    assert.deepEqual(own.spec?.finalizers, ['example.com/mine', 'kubernetes']);
  });

  test('deleting a namespace with a Deployment: Terminating, new content refused, everything deleted, then the namespace; no writes afterwards', async () => {
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } });
    await c.create('deployments', deployment('x', 'd', 3));
    await until('3 pods', async () => (await c.list('pods', 'x')).items.length === 3);
    await c.delete('namespaces', undefined, 'x');
    // The deletion only marks it (kubectl then waits for it to disappear).
    let marked: NamespaceWithConditions | undefined;
    try {
      marked = await c.get<NamespaceWithConditions>('namespaces', undefined, 'x');
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
    if (marked !== undefined) {
      assert.equal(marked.status?.phase, 'Terminating');
      assert.ok(marked.metadata.deletionTimestamp !== undefined);
    }
    await until('the namespace is gone', () => gone(c, 'namespaces', undefined, 'x'));
    for (const resource of ['deployments', 'replicasets', 'pods', 'events']) {
      assert.deepEqual((await c.list(resource, 'x')).items.map((o) => o.metadata.name), [], `no ${resource} left in x`);
    }
    // Nothing keeps rewriting anything (issue 12: ~150 Deployment status writes a second).
    const r0 = await revision(c);
    await new Promise((r) => setTimeout(r, 2000));
    const writes = (await revision(c)) - r0;
    assert.ok(writes <= 3, `${writes} store writes in 2 s after the namespace was gone`);
  });

  test('content created while it terminates is refused with 403; a second delete writes nothing; system namespaces stay', async () => {
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'held' } });
    await c.create('pods', pod('held', 'hold', { finalizers: ['example.com/hold'] }));
    await c.delete('namespaces', undefined, 'held');
    const ns = await c.get<NamespaceWithConditions>('namespaces', undefined, 'held');
    assert.equal(ns.status?.phase, 'Terminating');
    await assert.rejects(c.create('pods', pod('held', 'late')), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.code, 403);
      assert.equal(err.message, 'unable to create new content in namespace held because it is being terminated');
      return true;
    });
    // The controller reports what holds it.
    await until('the conditions say a finalizer remains', async () => {
      const cur = await c.get<NamespaceWithConditions>('namespaces', undefined, 'held');
      return condition(cur, 'NamespaceFinalizersRemaining')?.status === 'True';
    });
    const cur = await c.get<NamespaceWithConditions>('namespaces', undefined, 'held');
    assert.deepEqual(condition(cur, 'NamespaceContentRemaining'), { ...condition(cur, 'NamespaceContentRemaining'), status: 'True', reason: 'SomeResourcesRemain', message: 'Some resources are remaining: pods. has 1 resource instances' });
    assert.equal(condition(cur, 'NamespaceFinalizersRemaining')?.message, 'Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances');
    assert.equal(condition(cur, 'NamespaceDeletionContentFailure')?.status, 'False');
    assert.deepEqual(cur.spec?.finalizers, ['kubernetes']);
    const held = await c.get<Pod>('pods', 'held', 'hold');
    assert.ok(held.metadata.deletionTimestamp !== undefined, 'the pod is being deleted, held by its finalizer');
    // Deleting again changes nothing and writes nothing.
    const rv = cur.metadata.resourceVersion;
    await c.delete('namespaces', undefined, 'held');
    assert.equal((await c.get('namespaces', undefined, 'held')).metadata.resourceVersion, rv);
    // Whoever holds the pod lets go: the pod goes, then the namespace.
    await c.update('pods', { ...held, metadata: { ...held.metadata, finalizers: [] } });
    await until('the namespace is gone', () => gone(c, 'namespaces', undefined, 'held'));
    for (const name of ['default', 'kube-system', 'kube-node-lease']) {
      await assert.rejects(c.delete('namespaces', undefined, name), (err: unknown) => err instanceof ApiError && err.code === 403);
    }
  });

  test('a pod on a node keeps its grace period: the namespace waits for its kubelet', async () => {
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'graceful' } });
    await c.create('pods', pod('graceful', 'running', { nodeName: 'n1' }));
    await c.delete('namespaces', undefined, 'graceful');
    await until('the pod is being deleted', async () => (await c.get<Pod>('pods', 'graceful', 'running')).metadata.deletionTimestamp !== undefined);
    const p = await c.get<Pod>('pods', 'graceful', 'running');
    assert.equal(p.metadata.deletionGracePeriodSeconds, 30, 'a normal deletion, with the pod spec grace period');
    await new Promise((r) => setTimeout(r, 1500));
    const ns = await c.get<NamespaceWithConditions>('namespaces', undefined, 'graceful');
    assert.equal(ns.status?.phase, 'Terminating', 'still there while the pod is');
    assert.equal(condition(ns, 'NamespaceContentRemaining')?.message, 'Some resources are remaining: pods. has 1 resource instances');
    // The kubelet has stopped the containers: it finishes the deletion.
    await c.delete('pods', 'graceful', 'running', { gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid ?? '' } });
    await until('the namespace is gone', () => gone(c, 'namespaces', undefined, 'graceful'));
  });

  test('objects written over and over while the namespace terminates are still deleted (none left behind)', async () => {
    // Issue 12's Deployment was left behind when its controller wrote it between the list and
    // the delete of the namespace's content (a 409 that was taken for "gone").
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'busy' } });
    const names = Array.from({ length: 20 }, (_, i) => `web-${i}`);
    for (const name of names) await c.create('deployments', deployment('busy', name, 0));
    let writing = true;
    let n = 0;
    const writers = [0, 1, 2, 3].map(async (w) => {
      for (let i = w; writing; i++) {
        try {
          await c.patch('deployments', 'busy', names[i % names.length]!, { metadata: { annotations: { n: String(++n) } } }, 'merge');
        } catch (err) {
          if (!(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict'))) throw err;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 100));
    try {
      await c.delete('namespaces', undefined, 'busy');
      await until('the namespace is gone', () => gone(c, 'namespaces', undefined, 'busy'));
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    assert.ok(n > 20, `the writers wrote (${n} patches)`);
    assert.deepEqual((await c.list('deployments', 'busy')).items.map((d) => d.metadata.name), [], 'no Deployment outlived its namespace');
  });

  test('a namespace stored before namespaces had finalizers is emptied too', async () => {
    // Written as 5cceb1a's API wrote namespaces: no spec.finalizers.
    const legacy: Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'legacy', uid: 'legacy-uid', creationTimestamp: '2026-01-01T00:00:00Z', generation: 1 }, status: { phase: 'Active' } };
    await api.node.write({ type: 'put', key: '/registry/namespaces/legacy', value: encodeObject(legacy) });
    await c.create('pods', pod('legacy', 'p'));
    await c.delete('namespaces', undefined, 'legacy');
    await until('the namespace is gone', () => gone(c, 'namespaces', undefined, 'legacy'));
    assert.deepEqual((await c.list('pods', 'legacy')).items, []);
  });

  test('PUT namespaces/NAME/finalize is served', async () => {
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fin' } });
    const ns = await c.get<Namespace>('namespaces', undefined, 'fin');
    const res = await api.server.execute({ name: 'admin', role: 'admin' }, {
      method: 'PUT',
      path: '/api/v1/namespaces/fin/finalize',
      query: new URLSearchParams(),
      accept: 'application/json',
      contentType: 'application/json',
      body: async () => ({ ...ns, spec: { finalizers: [] } }),
    });
    assert.equal(res.code, 200);
    assert.deepEqual((res.body as Namespace).spec?.finalizers, []);
    // Nothing holds it now: deleting it is immediate (as in Kubernetes).
    await c.delete('namespaces', undefined, 'fin');
    assert.ok(await gone(c, 'namespaces', undefined, 'fin'));
  });
});

describe('without the namespace controller', () => {
  test('a deleted namespace stays Terminating with its content (nothing else removes it)', async (t) => {
    const api = await startTestApi();
    t.after(() => api.stop());
    const c = api.client;
    const stop = await startLoops(c, false);
    t.after(stop);
    await c.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'y' } });
    await c.create<KubeObject>('deployments', deployment('y', 'd', 1));
    await c.delete('namespaces', undefined, 'y');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await c.get<Namespace>('namespaces', undefined, 'y')).status?.phase, 'Terminating');
    assert.equal((await c.list('deployments', 'y')).items.length, 1);
  });
});

// The Deployment controller (with the ReplicaSet controller making the pods) against the real
// API on a real store, with no agents: the test plays the kubelet by marking pods ready.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, Informer, InformerFactory, type ApiClient, type Deployment, type DeploymentSpec, type KubeObject, type Pod, type ReplicaSet } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { DeploymentController } from '../src/deployment.ts';
import { ReplicaSetController } from '../src/replicaset.ts';
import { computeHash, getCondition, resolveFenceposts, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION } from '../src/deployment-util.ts';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `before` once, just ahead of the first call that `when` picks (an external writer racing the controller). */
class RacingClient implements ApiClient {
  conflicts = 0;
  private armed: { when: (resource: string, obj: KubeObject, sub?: 'status') => boolean; before: () => Promise<void> } | undefined;

  constructor(private readonly inner: ApiClient) {}

  race(when: (resource: string, obj: KubeObject, sub?: 'status') => boolean, before: () => Promise<void>): void {
    this.armed = { when, before };
  }

  async update<T extends KubeObject>(resource: string, obj: T, sub?: 'status'): Promise<T> {
    const a = this.armed;
    if (a !== undefined && a.when(resource, obj, sub)) {
      this.armed = undefined;
      await a.before();
    }
    try {
      return await this.inner.update(resource, obj, sub);
    } catch (e) {
      if (e instanceof ApiError && e.code === 409) this.conflicts++;
      throw e;
    }
  }
  get: ApiClient['get'] = (r, ns, n) => this.inner.get(r, ns, n);
  list: ApiClient['list'] = (r, ns, o) => this.inner.list(r, ns, o);
  create: ApiClient['create'] = (r, o) => this.inner.create(r, o);
  patch: ApiClient['patch'] = (r, ns, n, p, t, s) => this.inner.patch(r, ns, n, p, t, s);
  delete: ApiClient['delete'] = (r, ns, n, o) => this.inner.delete(r, ns, n, o);
  bind: ApiClient['bind'] = (ns, n, node, uid) => this.inner.bind(ns, n, node, uid);
  watch: ApiClient['watch'] = (r, ns, rv, cb, o) => this.inner.watch(r, ns, rv, cb, o);
}

interface Harness {
  readonly deployments: DeploymentController;
  readonly replicasets: ReplicaSetController;
  idle(): Promise<void>;
  stop(): void;
}

async function startControllers(client: ApiClient, deploymentClient: ApiClient = client): Promise<Harness> {
  const informers = new InformerFactory(client, silentLogger);
  const replicasets = new ReplicaSetController({ client, informers, logger: silentLogger, now: Date.now });
  const deployments = new DeploymentController({ client: deploymentClient, informers, logger: silentLogger, now: Date.now });
  await informers.start();
  replicasets.start();
  deployments.start();
  return {
    deployments,
    replicasets,
    idle: async () => {
      await deployments.idle();
      await replicasets.idle();
    },
    stop: () => {
      deployments.stop();
      replicasets.stop();
      informers.stop();
    },
  };
}

function deployment(namespace: string, name: string, replicas: number, version: string, spec: Partial<DeploymentSpec> = {}): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name }, annotations: { version } }, spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '100'] }] } },
      ...spec,
    },
  };
}

const isActive = (p: Pod): boolean => p.metadata.deletionTimestamp === undefined && p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded';
const isReady = (p: Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

async function activePods(client: ApiClient, ns: string, app: string): Promise<Pod[]> {
  return (await client.list<Pod>('pods', ns, { labelSelector: `app=${app}` })).items.filter(isActive);
}

async function replicaSets(client: ApiClient, ns: string, app: string): Promise<ReplicaSet[]> {
  return (await client.list<ReplicaSet>('replicasets', ns, { labelSelector: `app=${app}` })).items;
}

async function getDeployment(client: ApiClient, ns: string, name: string): Promise<Deployment> {
  return client.get<Deployment>('deployments', ns, name);
}

/** What a kubelet does when a pod's readiness probe passes. */
async function markReady(client: ApiClient, pod: Pod): Promise<boolean> {
  for (;;) {
    let cur: Pod;
    try {
      cur = await client.get<Pod>('pods', pod.metadata.namespace, pod.metadata.name ?? '');
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      throw e;
    }
    const next: Pod = { ...cur, status: { ...cur.status, phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }] } };
    try {
      await client.update('pods', next, 'status');
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      if (!(e instanceof ApiError && e.code === 409)) throw e;
    }
  }
}

async function markAllReady(client: ApiClient, ns: string, app: string): Promise<void> {
  for (const p of await activePods(client, ns, app)) if (!isReady(p)) await markReady(client, p);
}

/** Rolls forward by marking pods ready until the deployment reports a complete rollout. */
async function completeRollout(client: ApiClient, ns: string, name: string, replicas: number): Promise<Deployment> {
  let done: Deployment | undefined;
  await until(`deployment ${name} completes`, async () => {
    await markAllReady(client, ns, name);
    const d = await getDeployment(client, ns, name);
    const s = d.status;
    const complete = s?.observedGeneration === d.metadata.generation && s?.updatedReplicas === replicas && s.replicas === replicas && s.availableReplicas === replicas && getCondition(s, 'Progressing')?.reason === 'NewReplicaSetAvailable';
    if (complete) done = d;
    return complete;
  });
  return done!;
}

/** Waits until the controllers are idle and nothing moved for a moment (pods, RSs). */
async function settle(h: Harness, client: ApiClient, ns: string, app: string): Promise<void> {
  const snapshot = async (): Promise<string> =>
    JSON.stringify([(await activePods(client, ns, app)).map((p) => [p.metadata.name, isReady(p)]).sort(), (await replicaSets(client, ns, app)).map((r) => [r.metadata.name, r.spec.replicas, r.status]).sort()]);
  let prev = '';
  for (;;) {
    await h.idle();
    await new Promise((r) => setTimeout(r, 30));
    const cur = await snapshot();
    if (cur === prev) return;
    prev = cur;
  }
}

let nsCount = 0;
async function namespace(client: ApiClient): Promise<string> {
  const name = `dep-${++nsCount}`;
  await client.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

describe('pod-template hash and surge arithmetic', () => {
  test('the hash is stable across key order and changes with the template', () => {
    const a = deployment('x', 'h', 1, 'v1').spec.template;
    const reordered = { spec: a.spec, metadata: { annotations: { version: 'v1' }, labels: { app: 'h' } } };
    assert.equal(computeHash(a), computeHash(reordered));
    assert.equal(computeHash(a), computeHash({ ...a, metadata: { ...a.metadata, labels: { app: 'h', 'pod-template-hash': 'zzz' } } }), 'the hash label itself is ignored');
    assert.notEqual(computeHash(a), computeHash(deployment('x', 'h', 1, 'v2').spec.template));
    assert.match(computeHash(a), /^[bcdfghjklmnpqrstvwxz2456789]+$/);
  });

  test('maxSurge rounds up, maxUnavailable rounds down, and both zero after rounding becomes 1 unavailable', () => {
    const f = (replicas: number, maxSurge: number | string, maxUnavailable: number | string) =>
      resolveFenceposts(deployment('x', 'f', replicas, 'v', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge, maxUnavailable } } }));
    assert.deepEqual(f(10, '25%', '25%'), { surge: 3, unavailable: 2 });
    assert.deepEqual(f(1, '25%', '25%'), { surge: 1, unavailable: 0 });
    assert.deepEqual(f(3, 0, '10%'), { surge: 0, unavailable: 1 });
    assert.deepEqual(f(4, 2, 1), { surge: 2, unavailable: 1 });
    assert.notDeepEqual(f(10, '25%', '25%'), { surge: 2, unavailable: 3 });
  });
});

describe('Deployment controller on the real API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.stop());

  test('a new deployment gets an RS <name>-<hash> at revision 1, pods, and status with conditions', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    const d = await c.create('deployments', deployment(ns, 'web', 3, 'v1'));
    await until('3 pods', async () => (await activePods(c, ns, 'web')).length === 3);
    const [rs] = await replicaSets(c, ns, 'web');
    const hash = computeHash(d.spec.template);
    assert.equal(rs?.metadata.name, `web-${hash}`);
    assert.deepEqual(rs?.spec.selector.matchLabels, { app: 'web', 'pod-template-hash': hash });
    assert.equal(rs?.spec.template.metadata?.labels?.['pod-template-hash'], hash);
    assert.equal(rs?.metadata.labels?.['pod-template-hash'], hash);
    assert.equal(rs?.metadata.annotations?.[REVISION_ANNOTATION], '1');
    assert.equal(rs?.metadata.ownerReferences?.[0]?.uid, d.metadata.uid);
    await until('status: 3 replicas, none available, Available=False', async () => {
      const s = (await getDeployment(c, ns, 'web')).status;
      return s?.replicas === 3 && s.updatedReplicas === 3 && s.availableReplicas === 0 && s.unavailableReplicas === 3 && getCondition(s, 'Available')?.status === 'False';
    });
    const progressing = getCondition((await getDeployment(c, ns, 'web')).status, 'Progressing');
    assert.equal(progressing?.status, 'True');
    assert.ok(['NewReplicaSetCreated', 'ReplicaSetUpdated'].includes(progressing?.reason ?? ''), progressing?.reason);
    const done = await completeRollout(c, ns, 'web', 3);
    assert.equal(done.metadata.annotations?.[REVISION_ANNOTATION], '1');
    assert.equal(done.status?.readyReplicas, 3);
    assert.equal(done.status?.unavailableReplicas, 0);
    assert.equal(done.status?.observedGeneration, done.metadata.generation);
    const available = getCondition(done.status, 'Available');
    assert.equal(available?.status, 'True');
    assert.equal(available?.reason, 'MinimumReplicasAvailable');
    assert.equal(getCondition(done.status, 'Progressing')?.status, 'True');

    // Once converged the loops go quiet: a resync (here caused by a label change, which is
    // not copied to ReplicaSets) writes nothing, as status is written only when it changes.
    await settle(h, c, ns, 'web');
    const rsVersions = async (): Promise<(string | undefined)[]> => (await replicaSets(c, ns, 'web')).map((r) => r.metadata.resourceVersion);
    const quietRs = await rsVersions();
    const poked = await c.patch<Deployment>('deployments', ns, 'web', { metadata: { labels: { poke: '1' } } });
    await settle(h, c, ns, 'web');
    assert.deepEqual(await rsVersions(), quietRs, 'no RS was rewritten by the resync');
    assert.equal((await getDeployment(c, ns, 'web')).metadata.resourceVersion, poked.metadata.resourceVersion, 'nor the deployment');
  });

  test('the API refuses maxSurge and maxUnavailable both 0', async () => {
    const c = api.client;
    const bad = deployment('default', 'zero', 1, 'v1', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } });
    await assert.rejects(c.create('deployments', bad), (e: ApiError) => e.code === 422);
  });

  test('a rolling update A→B never exceeds replicas+maxSurge nor drops below replicas-maxUnavailable ready', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    const replicas = 4;
    const surge = 1;
    const unavailable = 1;
    await c.create('deployments', deployment(ns, 'roll', replicas, 'A', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } } }));
    const first = await completeRollout(c, ns, 'roll', replicas);
    await settle(h, c, ns, 'roll');

    // Watch every change in order: RS sizes (what the controller decides) and ready pods.
    const rsWatch = new Informer<ReplicaSet>(c, 'replicasets', { namespace: ns });
    const podWatch = new Informer<Pod>(c, 'pods', { namespace: ns });
    let maxSpecSum = 0;
    let minReady = Number.POSITIVE_INFINITY;
    let maxPods = 0;
    rsWatch.on({ update: () => (maxSpecSum = Math.max(maxSpecSum, rsWatch.list().reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0))), add: () => (maxSpecSum = Math.max(maxSpecSum, rsWatch.list().reduce((n, rs) => n + (rs.spec.replicas ?? 0), 0))) });
    const onPods = (): void => {
      const active = podWatch.list().filter(isActive);
      minReady = Math.min(minReady, active.filter(isReady).length);
      maxPods = Math.max(maxPods, active.length);
    };
    podWatch.on({ add: onPods, update: onPods, delete: onPods });
    await rsWatch.start();
    await podWatch.start();
    t.after(() => {
      rsWatch.stop();
      podWatch.stop();
    });
    // Filling the cache passed through partial counts: start counting from the full picture.
    minReady = Number.POSITIVE_INFINITY;
    onPods();
    assert.equal(minReady, replicas);

    await c.update('deployments', { ...first, spec: { ...first.spec, template: deployment(ns, 'roll', replicas, 'B').spec.template } });
    const samples: { pods: number; ready: number }[] = [];
    for (let step = 0; ; step++) {
      assert.ok(step < 50, 'the rollout finished within 50 steps');
      await settle(h, c, ns, 'roll');
      const pods = await activePods(c, ns, 'roll');
      samples.push({ pods: pods.length, ready: pods.filter(isReady).length });
      const d = await getDeployment(c, ns, 'roll');
      const s = d.status;
      if (s?.updatedReplicas === replicas && s.replicas === replicas && s.availableReplicas === replicas && s.observedGeneration === d.metadata.generation) break;
      // The kubelet makes one more pod ready.
      const next = pods.find((p) => !isReady(p));
      if (next !== undefined) await markReady(c, next);
    }
    for (const s of samples) {
      assert.ok(s.pods <= replicas + surge, `sampled ${s.pods} pods > ${replicas + surge}`);
      assert.ok(s.ready >= replicas - unavailable, `sampled ${s.ready} ready < ${replicas - unavailable}`);
    }
    assert.ok(samples.length >= 3, 'the rollout took several steps');
    assert.ok(maxSpecSum <= replicas + surge, `RS sizes summed to ${maxSpecSum}`);
    assert.equal(maxSpecSum, replicas + surge, 'the surge was used');
    assert.ok(minReady >= replicas - unavailable, `only ${minReady} pods were ready at one point`);
    assert.ok(maxPods <= replicas + surge + 1, `${maxPods} pods at once`);

    const rss = await replicaSets(c, ns, 'roll');
    assert.equal(rss.length, 2);
    const newRS = rss.find((r) => r.metadata.annotations?.[REVISION_ANNOTATION] === '2');
    const oldRS = rss.find((r) => r.metadata.annotations?.[REVISION_ANNOTATION] === '1');
    assert.equal(newRS?.spec.replicas, replicas);
    assert.equal(oldRS?.spec.replicas, 0);
    assert.ok((await activePods(c, ns, 'roll')).every((p) => p.metadata.annotations?.['version'] === 'B'));
    const d = await getDeployment(c, ns, 'roll');
    assert.equal(d.metadata.annotations?.[REVISION_ANNOTATION], '2');
    assert.equal(getCondition(d.status, 'Progressing')?.reason, 'NewReplicaSetAvailable');
  });

  test('Recreate: old pods are all gone before any new pod exists', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    const first = await c.create('deployments', deployment(ns, 'rec', 3, 'A', { strategy: { type: 'Recreate' } }));
    await completeRollout(c, ns, 'rec', 3);
    const oldHash = computeHash(first.spec.template);
    const podWatch = new Informer<Pod>(c, 'pods', { namespace: ns });
    let overlap = false;
    let sawNew = false;
    const check = (): void => {
      const active = podWatch.list().filter((p) => p.metadata.labels?.['app'] === 'rec');
      const oldPods = active.filter((p) => p.metadata.labels?.['pod-template-hash'] === oldHash);
      const newPods = active.filter((p) => p.metadata.labels?.['pod-template-hash'] !== oldHash);
      if (newPods.length > 0) sawNew = true;
      if (oldPods.length > 0 && newPods.length > 0) overlap = true;
    };
    podWatch.on({ add: check, update: check, delete: check });
    await podWatch.start();
    t.after(() => podWatch.stop());
    const cur = await getDeployment(c, ns, 'rec');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, template: deployment(ns, 'rec', 3, 'B').spec.template } });
    await completeRollout(c, ns, 'rec', 3);
    await until('the watch saw the new pods', () => sawNew);
    assert.equal(overlap, false, 'old and new pods never existed at the same time');
    const rss = await replicaSets(c, ns, 'rec');
    assert.deepEqual(rss.map((r) => [r.metadata.annotations?.[REVISION_ANNOTATION], r.spec.replicas]).sort(), [['1', 0], ['2', 3]]);
  });

  test('revisionHistoryLimit keeps only that many old RSs (the newest ones)', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    await c.create('deployments', deployment(ns, 'hist', 1, 'v1', { revisionHistoryLimit: 1 }));
    await completeRollout(c, ns, 'hist', 1);
    for (const v of ['v2', 'v3', 'v4']) {
      const cur = await getDeployment(c, ns, 'hist');
      await c.update('deployments', { ...cur, spec: { ...cur.spec, template: deployment(ns, 'hist', 1, v).spec.template } });
      await completeRollout(c, ns, 'hist', 1);
    }
    await until('only revisions 3 and 4 remain', async () => {
      const revs = (await replicaSets(c, ns, 'hist')).map((r) => r.metadata.annotations?.[REVISION_ANNOTATION]).sort();
      return JSON.stringify(revs) === JSON.stringify(['3', '4']);
    });
  });

  test('rollback as kubectl rollout undo does it reuses the old RS and gives it the next revision', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    await c.create('deployments', deployment(ns, 'undo', 2, 'v1'));
    await completeRollout(c, ns, 'undo', 2);
    let cur = await getDeployment(c, ns, 'undo');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, template: deployment(ns, 'undo', 2, 'v2').spec.template } });
    await completeRollout(c, ns, 'undo', 2);
    const before = await replicaSets(c, ns, 'undo');
    const rev1 = before.find((r) => r.metadata.annotations?.[REVISION_ANNOTATION] === '1')!;
    assert.equal(rev1.spec.replicas, 0);

    // kubectl rollout undo: the template of the previous revision, without its hash label.
    const template = structuredClone(rev1.spec.template);
    delete template.metadata!.labels!['pod-template-hash'];
    cur = await getDeployment(c, ns, 'undo');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, template } });
    const done = await completeRollout(c, ns, 'undo', 2);
    const after = await replicaSets(c, ns, 'undo');
    assert.equal(after.length, 2, 'no new RS was created');
    const reused = after.find((r) => r.metadata.uid === rev1.metadata.uid)!;
    assert.equal(reused.metadata.annotations?.[REVISION_ANNOTATION], '3');
    assert.equal(reused.metadata.annotations?.[REVISION_HISTORY_ANNOTATION], '1');
    assert.equal(reused.spec.replicas, 2);
    assert.equal(done.metadata.annotations?.[REVISION_ANNOTATION], '3');
    assert.equal(after.find((r) => r.metadata.uid !== rev1.metadata.uid)?.spec.replicas, 0);
    assert.ok((await activePods(c, ns, 'undo')).every((p) => p.metadata.annotations?.['version'] === 'v1'));
  });

  test('paused: no rollout (DeploymentPaused), scaling still works; resumed: the rollout runs', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    await c.create('deployments', deployment(ns, 'pz', 2, 'v1'));
    await completeRollout(c, ns, 'pz', 2);
    let cur = await getDeployment(c, ns, 'pz');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, paused: true, replicas: 3, template: deployment(ns, 'pz', 3, 'v2').spec.template } });
    await until('paused condition and scaled to 3', async () => {
      const d = await getDeployment(c, ns, 'pz');
      return getCondition(d.status, 'Progressing')?.reason === 'DeploymentPaused' && (await activePods(c, ns, 'pz')).length === 3;
    });
    await settle(h, c, ns, 'pz');
    assert.equal((await replicaSets(c, ns, 'pz')).length, 1, 'no new RS while paused');
    cur = await getDeployment(c, ns, 'pz');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, paused: false } });
    await completeRollout(c, ns, 'pz', 3);
    assert.ok((await activePods(c, ns, 'pz')).every((p) => p.metadata.annotations?.['version'] === 'v2'));
  });

  test('scaling in the middle of a rollout scales the RSs proportionally', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const h = await startControllers(c);
    t.after(() => h.stop());
    await c.create('deployments', deployment(ns, 'prop', 10, 'v1', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } } }));
    await completeRollout(c, ns, 'prop', 10);
    let cur = await getDeployment(c, ns, 'prop');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, template: deployment(ns, 'prop', 10, 'v2').spec.template } });
    // New pods never become ready: the rollout stalls with old 8, new 5 (13 = 10 + 3).
    await until('the rollout stalls at 8 old + 5 new', async () => {
      const sizes = (await replicaSets(c, ns, 'prop')).map((r) => [r.metadata.annotations?.[REVISION_ANNOTATION], r.spec.replicas]).sort();
      return JSON.stringify(sizes) === JSON.stringify([['1', 8], ['2', 5]]);
    });
    await settle(h, c, ns, 'prop');
    cur = await getDeployment(c, ns, 'prop');
    await c.update('deployments', { ...cur, spec: { ...cur.spec, replicas: 20 } });
    // 23 allowed (20 + maxSurge 3), 13 now: 10 more, shared by size relative to the 13 they
    // were sized for: old 8·23/13 ≈ 14 (+6), new 5·23/13 ≈ 9 (+4).
    await until('both RSs grew in proportion', async () => {
      const sizes = (await replicaSets(c, ns, 'prop')).map((r) => [r.metadata.annotations?.[REVISION_ANNOTATION], r.spec.replicas]).sort();
      return JSON.stringify(sizes) === JSON.stringify([['1', 14], ['2', 9]]);
    });
  });

  test('a 409 from an external update racing the controller is retried and converges', async (t) => {
    const c = api.client;
    const ns = await namespace(c);
    const racing = new RacingClient(c);
    const h = await startControllers(c, racing);
    t.after(() => h.stop());
    await c.create('deployments', deployment(ns, 'race', 2, 'v1'));
    await completeRollout(c, ns, 'race', 2);
    await settle(h, c, ns, 'race');
    const [rs] = await replicaSets(c, ns, 'race');
    // Someone else changes the RS just before the controller writes its new size.
    racing.race(
      (resource, obj) => resource === 'replicasets' && obj.metadata.name === rs!.metadata.name,
      async () => {
        await c.patch('replicasets', ns, rs!.metadata.name!, { metadata: { annotations: { external: 'edit' } } });
      },
    );
    await c.patch('deployments', ns, 'race', { spec: { replicas: 4 } });
    await until('the RS scaled to 4 despite the conflict', async () => (await c.get<ReplicaSet>('replicasets', ns, rs!.metadata.name!)).spec.replicas === 4);
    assert.ok(racing.conflicts >= 1, 'the controller did hit a 409');
    const after = await c.get<ReplicaSet>('replicasets', ns, rs!.metadata.name!);
    assert.equal(after.metadata.annotations?.['external'], 'edit', "the other writer's change survived");
    await completeRollout(c, ns, 'race', 4);

    // And a status write racing a user's change of the Deployment itself.
    racing.race(
      (resource, _obj, sub) => resource === 'deployments' && sub === 'status',
      async () => {
        await c.patch('deployments', ns, 'race', { metadata: { labels: { touched: 'yes' } } });
      },
    );
    const conflictsBefore = racing.conflicts;
    await c.patch('deployments', ns, 'race', { spec: { replicas: 3 } });
    await until('status converged on 3 replicas', async () => {
      const d = await getDeployment(c, ns, 'race');
      return d.status?.replicas === 3 && d.status.observedGeneration === d.metadata.generation && d.metadata.labels?.['touched'] === 'yes';
    });
    assert.ok(racing.conflicts > conflictsBefore, 'the status write hit a 409 too');
  });
});

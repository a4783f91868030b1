// The garbage collector on the real API: background, foreground and orphan propagation,
// foreign finalizers, owners replaced under the same name, a live check that a lagging cache
// cannot fool, and a restart in the middle of a foreground deletion.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { ApiError, InformerFactory, type ApiClient, type Deployment, type KubeObject, type OwnerReference, type Pod, type ReplicaSet } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { GarbageCollector } from '../src/gc.ts';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const template = (app: string) => ({ metadata: { labels: { app } }, spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '100'] }] } });

const ownedBy = (owner: KubeObject, block = true): OwnerReference[] => [
  { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name!, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: block },
];

const deployment = (name: string): Deployment => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' }, spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: template(name) } });

const replicaSet = (name: string, owner?: KubeObject, finalizers?: string[]): ReplicaSet => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name, namespace: 'default', ...(owner === undefined ? {} : { ownerReferences: ownedBy(owner) }), ...(finalizers === undefined ? {} : { finalizers }) },
  spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: template(name) },
});

/** A pod no agent runs (no nodeName), so a deletion is immediate unless something holds it. */
const pod = (name: string, ownerReferences?: OwnerReference[], finalizers?: string[]): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', ...(ownerReferences === undefined ? {} : { ownerReferences }), ...(finalizers === undefined ? {} : { finalizers }) },
  spec: { containers: [{ name: 'c', image: 'process', command: ['sleep', '100'] }] },
});

/** A client whose watches of `frozen` resources never deliver anything: a lagging informer. */
function withFrozenWatches(client: ApiClient, frozen: string[]): ApiClient {
  return {
    get: (r, ns, n) => client.get(r, ns, n),
    list: (r, ns, o) => client.list(r, ns, o),
    create: (r, o) => client.create(r, o),
    update: (r, o, s) => client.update(r, o, s),
    patch: (r, ns, n, p, t, s) => client.patch(r, ns, n, p, t, s),
    delete: (r, ns, n, o) => client.delete(r, ns, n, o),
    bind: (ns, n, node, uid) => client.bind(ns, n, node, uid),
    watch: (r, ns, rv, cb, o) => (frozen.includes(r) ? Promise.resolve(() => {}) : client.watch(r, ns, rv, cb, o)),
  };
}

describe('garbage collector', () => {
  let api: TestApi;
  /** Collectors and their informers, stopped after each test (open watches keep the process alive). */
  const running: { stop(): void }[] = [];
  before(async () => {
    api = await startTestApi();
  });
  afterEach(() => {
    for (const gc of running.splice(0)) gc.stop();
  });
  after(() => api.stop());

  async function startGc(client: ApiClient = api.client): Promise<GarbageCollector> {
    const informers = new InformerFactory(client);
    const gc = new GarbageCollector({ client, informers, logger: silentLogger, now: Date.now });
    await informers.start();
    gc.start();
    running.push(gc, informers);
    return gc;
  }

  async function get<T extends KubeObject>(resource: string, name: string): Promise<T | undefined> {
    try {
      return await api.client.get<T>(resource, 'default', name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }
  const gone = async (resource: string, name: string): Promise<boolean> => (await get(resource, name)) === undefined;

  async function removeFinalizers(resource: string, name: string): Promise<void> {
    const obj = (await get(resource, name))!;
    await api.client.update(resource, { ...obj, metadata: { ...obj.metadata, finalizers: [] } });
  }

  test('background: deleting a ReplicaSet deletes its pods, not the pods of another', async () => {
    await startGc();
    const rs = await api.client.create('replicasets', replicaSet('bg'));
    const keep = await api.client.create('replicasets', replicaSet('bg-keep'));
    await api.client.create('pods', pod('bg-1', ownedBy(rs)));
    await api.client.create('pods', pod('bg-2', ownedBy(rs)));
    await api.client.create('pods', pod('bg-keep-1', ownedBy(keep)));
    await api.client.delete('replicasets', 'default', 'bg');
    await until('the pods of bg are collected', async () => (await gone('pods', 'bg-1')) && (await gone('pods', 'bg-2')));
    assert.ok(!(await gone('pods', 'bg-keep-1')), 'a pod whose owner exists stays');
  });

  test('foreground: the Deployment waits for its ReplicaSet and pods, then goes', async () => {
    await startGc();
    const d = await api.client.create('deployments', deployment('fg'));
    const rs = await api.client.create('replicasets', replicaSet('fg-rs', d));
    await api.client.create('pods', pod('fg-1', ownedBy(rs)));
    // A finalizer of someone else's holds one pod: the whole chain must wait for it.
    await api.client.create('pods', pod('fg-held', ownedBy(rs), ['example.com/hold']));
    await api.client.delete('deployments', 'default', 'fg', { propagationPolicy: 'Foreground' });
    await until('the chain reached the held pod', async () => (await get<Pod>('pods', 'fg-held'))?.metadata.deletionTimestamp !== undefined && (await gone('pods', 'fg-1')));
    const waitingRs = await get<ReplicaSet>('replicasets', 'fg-rs');
    assert.deepEqual(waitingRs?.metadata.finalizers, ['foregroundDeletion'], 'the ReplicaSet was deleted in the foreground and waits');
    const waitingD = await get<Deployment>('deployments', 'fg');
    assert.ok(waitingD?.metadata.deletionTimestamp !== undefined, 'the Deployment still exists while a pod remains');
    assert.deepEqual(waitingD.metadata.finalizers, ['foregroundDeletion']);
    await removeFinalizers('pods', 'fg-held');
    await until('pod, ReplicaSet and Deployment are gone', async () => (await gone('pods', 'fg-held')) && (await gone('replicasets', 'fg-rs')) && (await gone('deployments', 'fg')));
  });

  test('orphan: the pods stay, without their reference to the deleted ReplicaSet', async () => {
    await startGc();
    const rs = await api.client.create('replicasets', replicaSet('or'));
    const other = await api.client.create('deployments', deployment('or-other'));
    await api.client.create('pods', pod('or-1', ownedBy(rs)));
    await api.client.create('pods', pod('or-2', [...ownedBy(rs), ...ownedBy(other, false).map((r) => ({ ...r, controller: false }))]));
    await api.client.delete('replicasets', 'default', 'or', { propagationPolicy: 'Orphan' });
    await until('the ReplicaSet is gone', () => gone('replicasets', 'or'));
    assert.equal((await get<Pod>('pods', 'or-1'))?.metadata.ownerReferences, undefined);
    assert.deepEqual((await get<Pod>('pods', 'or-2'))?.metadata.ownerReferences?.map((r) => r.name), ['or-other'], 'other owners are kept');
  });

  test('an owner with a foreign finalizer stays, and so do its dependents, until that finalizer goes', async () => {
    await startGc();
    const rs = await api.client.create('replicasets', replicaSet('fin', undefined, ['example.com/keep']));
    await api.client.create('pods', pod('fin-1', ownedBy(rs)));
    await api.client.delete('replicasets', 'default', 'fin');
    // A barrier: the collector has handled later work, so it had its chance to act on `fin`.
    const barrier = await api.client.create('replicasets', replicaSet('fin-barrier'));
    await api.client.create('pods', pod('fin-barrier-1', ownedBy(barrier)));
    await api.client.delete('replicasets', 'default', 'fin-barrier');
    await until('the barrier pod is collected', () => gone('pods', 'fin-barrier-1'));
    const held = await get<ReplicaSet>('replicasets', 'fin');
    assert.deepEqual(held?.metadata.finalizers, ['example.com/keep']);
    assert.ok(!(await gone('pods', 'fin-1')), 'its owner still exists');
    await removeFinalizers('replicasets', 'fin');
    await until('the ReplicaSet and then its pod are gone', async () => (await gone('replicasets', 'fin')) && (await gone('pods', 'fin-1')));
  });

  test('a dependent of an owner deleted and recreated under the same name (another uid) is collected', async () => {
    await startGc();
    const rs = await api.client.create('replicasets', replicaSet('re'));
    await api.client.create('pods', pod('re-current', ownedBy(rs)));
    const stale: OwnerReference[] = ownedBy(rs).map((r) => ({ ...r, uid: '00000000-0000-4000-8000-000000000000' }));
    await api.client.create('pods', pod('re-stale', stale));
    await until('the pod of the old uid is collected', () => gone('pods', 're-stale'));
    assert.ok(!(await gone('pods', 're-current')), 'the pod of the current uid stays');
  });

  test('a lagging cache never causes a wrong deletion: "owner gone" is confirmed with a live read', async () => {
    // The collector's ReplicaSet informer lists once (before these exist) and then hears nothing.
    await startGc(withFrozenWatches(api.client, ['replicasets']));
    const rs = await api.client.create('replicasets', replicaSet('lag'));
    await api.client.create('pods', pod('lag-owned', ownedBy(rs)));
    const missing = await api.client.create('replicasets', replicaSet('lag-missing'));
    await api.client.delete('replicasets', 'default', 'lag-missing');
    await api.client.create('pods', pod('lag-orphan', ownedBy(missing)));
    await until('the pod whose owner is really gone is collected', () => gone('pods', 'lag-orphan'));
    assert.ok(!(await gone('pods', 'lag-owned')), 'the pod whose owner the cache has not seen stays');
  });

  test('a collector restarted in the middle of a foreground deletion finishes it', async () => {
    const first = await startGc();
    const d = await api.client.create('deployments', deployment('rs-restart'));
    const rs = await api.client.create('replicasets', replicaSet('rs-restart-rs', d));
    await api.client.create('pods', pod('rs-restart-held', ownedBy(rs), ['example.com/hold']));
    await api.client.delete('deployments', 'default', 'rs-restart', { propagationPolicy: 'Foreground' });
    await until('the held pod is being deleted', async () => (await get<Pod>('pods', 'rs-restart-held'))?.metadata.deletionTimestamp !== undefined);
    first.stop();
    // While no collector runs: the hold goes, and a ReplicaSet is deleted in the background.
    await removeFinalizers('pods', 'rs-restart-held');
    const bg = await api.client.create('replicasets', replicaSet('rs-restart-bg'));
    await api.client.create('pods', pod('rs-restart-bg-1', ownedBy(bg)));
    await api.client.delete('replicasets', 'default', 'rs-restart-bg');
    assert.ok(!(await gone('deployments', 'rs-restart')), 'nothing finishes without a collector');
    assert.ok(!(await gone('pods', 'rs-restart-bg-1')));
    await startGc();
    await until('everything is finished', async () => (await gone('pods', 'rs-restart-held')) && (await gone('replicasets', 'rs-restart-rs')) && (await gone('deployments', 'rs-restart')) && (await gone('pods', 'rs-restart-bg-1')));
  });
});

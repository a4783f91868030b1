// The node lifecycle controller on the real API, driven by a fake clock: silence is measured
// from the controller's own observation of Lease renewals, a fresh controller gives every
// node a full grace period, pods are evicted after their toleration, a renewal lifts the taints.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { ApiError, InformerFactory, type Lease, type Node, type Pod, type Taint } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { NODE_LEASE_NAMESPACE, NodeLifecycleController } from '../src/nodelifecycle.ts';
import { TAINT_UNREACHABLE } from '../src/nodelifecycle-taints.ts';

const GRACE = 5000;
const EVICTION = 5000;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const node = (name: string, taints: Taint[] = []): Node => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  spec: taints.length > 0 ? { taints } : {},
  status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: '2024-01-01T00:00:00Z' }] },
});

const pod = (name: string, nodeName: string, tolerations: Pod['spec']['tolerations'] = []): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { nodeName, tolerations, containers: [{ name: 'c', image: 'process', command: ['sleep', '100'] }] },
});

/** Distinct renewTimes; their values (here far in the past) must not matter, only their changes. */
let renewals = 0;
const nextRenewTime = (): string => new Date(Date.UTC(2001, 0, 1) + ++renewals * 1000).toISOString();

describe('node lifecycle controller', () => {
  let api: TestApi;
  let clock = 1_000_000_000_000;
  /** Controllers and their informers, stopped after each test (open watches keep the process alive). */
  const running: { stop(): void }[] = [];
  before(async () => {
    api = await startTestApi();
  });
  afterEach(() => {
    for (const c of running.splice(0)) c.stop();
  });
  after(() => api.stop());

  async function startController(): Promise<{ ctrl: NodeLifecycleController; informers: InformerFactory }> {
    const informers = new InformerFactory(api.client);
    const ctrl = new NodeLifecycleController({ client: api.client, informers, logger: silentLogger, now: () => clock }, { gracePeriodMs: GRACE, evictionMs: EVICTION, monitorPeriodMs: 20 });
    await informers.start();
    ctrl.start();
    running.push(ctrl, informers);
    return { ctrl, informers };
  }

  async function createNodeWithLease(name: string, taints: Taint[] = []): Promise<void> {
    await api.client.create('nodes', node(name, taints));
    const lease: Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: NODE_LEASE_NAMESPACE }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: nextRenewTime() } };
    await api.client.create('leases', lease);
  }

  /** What an agent does; waits until the controller's informer has seen it. */
  async function renew(name: string, informers: InformerFactory): Promise<void> {
    const lease = await api.client.get<Lease>('leases', NODE_LEASE_NAMESPACE, name);
    const updated = await api.client.update('leases', { ...lease, spec: { ...lease.spec, renewTime: nextRenewTime() } });
    await until('the controller saw the renewal', () => informers.informer<Lease>('leases').get(NODE_LEASE_NAMESPACE, name)?.metadata.resourceVersion === updated.metadata.resourceVersion);
  }

  const getNode = (name: string): Promise<Node> => api.client.get<Node>('nodes', undefined, name);
  const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === 'Ready');
  const unreachableTaints = (n: Node) => (n.spec?.taints ?? []).filter((t) => t.key === TAINT_UNREACHABLE);
  async function podState(name: string): Promise<'running' | 'deleted'> {
    try {
      const p = await api.client.get<Pod>('pods', 'default', name);
      return p.metadata.deletionTimestamp === undefined ? 'running' : 'deleted';
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return 'deleted';
      throw err;
    }
  }

  test('a silent node is marked unreachable, its pods evicted per toleration, and a renewal lifts the taints', async () => {
    await createNodeWithLease('n1');
    await api.client.create('pods', pod('on-n1', 'n1'));
    await api.client.create('pods', pod('tolerates-100s', 'n1', [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 100 }]));
    await api.client.create('pods', pod('tolerates-forever', 'n1', [{ operator: 'Exists' }]));
    await createNodeWithLease('n1-neighbour');
    await api.client.create('pods', pod('on-neighbour', 'n1-neighbour'));
    const { ctrl, informers } = await startController();
    const t0 = clock;

    // Renewed within the grace period: healthy however old renewTime looks.
    clock = t0 + 3000;
    await renew('n1', informers);
    clock = t0 + 3000 + GRACE - 1;
    await ctrl.monitorNow();
    let n = await getNode('n1');
    assert.equal(ready(n)?.status, 'True', 'not marked before a full grace period without renewal');
    assert.deepEqual(unreachableTaints(n), []);

    clock = t0 + 3000 + GRACE;
    await ctrl.monitorNow();
    n = await getNode('n1');
    assert.equal(ready(n)?.status, 'Unknown');
    assert.equal(ready(n)?.reason, 'NodeStatusUnknown');
    assert.equal(ready(n)?.message, 'Kubelet stopped posting node status.');
    assert.equal(ready(n)?.lastHeartbeatTime, '2024-01-01T00:00:00Z', 'the last heartbeat is kept');
    assert.deepEqual(unreachableTaints(n).map((t) => t.effect).sort(), ['NoExecute', 'NoSchedule']);
    assert.ok(unreachableTaints(n).every((t) => t.timeAdded !== undefined));
    const tainted = clock;
    clock = tainted + 1000;
    await renew('n1-neighbour', informers);

    clock = tainted + EVICTION - 1;
    await ctrl.monitorNow();
    assert.equal(await podState('on-n1'), 'running', 'not evicted before the eviction period');

    clock = tainted + EVICTION;
    await ctrl.monitorNow();
    assert.equal(await podState('on-n1'), 'deleted');
    assert.equal(await podState('tolerates-100s'), 'running', 'its own tolerationSeconds wins');
    assert.equal(await podState('tolerates-forever'), 'running');
    assert.equal(await podState('on-neighbour'), 'running', 'pods of other nodes are untouched');
    assert.deepEqual(unreachableTaints(await getNode('n1-neighbour')), [], 'the neighbour renewed its lease');

    clock = tainted + 100_000;
    await ctrl.monitorNow();
    assert.equal(await podState('tolerates-100s'), 'deleted');
    assert.equal(await podState('tolerates-forever'), 'running');

    await renew('n1', informers);
    await ctrl.monitorNow();
    n = await getNode('n1');
    assert.deepEqual(unreachableTaints(n), [], 'a renewal lifts the taints');
    assert.equal(ready(n)?.status, 'Unknown', 'Ready is the agent to set again');
  });

  test('a fresh controller (new leader) gives every node a full grace period, whatever renewTime says', async () => {
    // n2: renewTime far in the past by our clock; n3: far in the future (a skewed agent) and
    // never renewed; n4: tainted by the previous leader; n5: no lease at all.
    await createNodeWithLease('n2');
    await createNodeWithLease('n3');
    const l3 = await api.client.get<Lease>('leases', NODE_LEASE_NAMESPACE, 'n3');
    await api.client.update('leases', { ...l3, spec: { ...l3.spec, renewTime: '2100-01-01T00:00:00.000000Z' } });
    const oldTaints: Taint[] = [
      { key: TAINT_UNREACHABLE, effect: 'NoSchedule', timeAdded: '2001-01-01T00:00:00Z' },
      { key: TAINT_UNREACHABLE, effect: 'NoExecute', timeAdded: '2001-01-01T00:00:00Z' },
    ];
    await createNodeWithLease('n4', oldTaints);
    await api.client.create('pods', pod('on-n4', 'n4'));
    await api.client.create('nodes', node('n5'));
    clock += 1_000_000;
    const { ctrl, informers } = await startController();
    const start = clock;

    clock = start + GRACE - 1;
    await ctrl.monitorNow();
    for (const name of ['n2', 'n3', 'n5']) assert.equal(ready(await getNode(name))?.status, 'True', `${name} not marked within the grace period after start`);
    assert.equal(unreachableTaints(await getNode('n4')).length, 2, 'taints stay until a renewal is observed');
    assert.equal(await podState('on-n4'), 'running', 'no eviction from the old taint time');

    await renew('n4', informers);
    await ctrl.monitorNow();
    assert.deepEqual(unreachableTaints(await getNode('n4')), [], 'an observed renewal lifts the old taints');

    clock = start + GRACE;
    await ctrl.monitorNow();
    for (const name of ['n2', 'n3', 'n5']) {
      const n = await getNode(name);
      assert.equal(ready(n)?.status, 'Unknown', `${name} marked after the grace period`);
      assert.equal(unreachableTaints(n).length, 2);
    }
    assert.deepEqual(unreachableTaints(await getNode('n4')), [], 'n4 renewed: still healthy');
  });

  test('a node seen without Ready condition gets Ready=Unknown NodeStatusNeverUpdated; stop() ends the loop', async () => {
    await api.client.create('nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n6' }, spec: {} } satisfies Node);
    const { ctrl } = await startController();
    clock += GRACE;
    await ctrl.monitorNow();
    const n = await getNode('n6');
    assert.equal(ready(n)?.status, 'Unknown');
    assert.equal(ready(n)?.reason, 'NodeStatusNeverUpdated');
    ctrl.stop();
    await api.client.update('nodes', { ...n, spec: {} });
    clock += GRACE;
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(unreachableTaints(await getNode('n6')), [], 'a stopped controller writes nothing');
  });

  test('on the real clock, the periodic check alone marks, evicts and lifts (grace 300 ms, eviction 300 ms)', async () => {
    await createNodeWithLease('r1');
    await api.client.create('pods', pod('on-r1', 'r1'));
    const informers = new InformerFactory(api.client);
    const ctrl = new NodeLifecycleController({ client: api.client, informers, logger: silentLogger, now: Date.now }, { gracePeriodMs: 300, evictionMs: 300, monitorPeriodMs: 50 });
    running.push(ctrl, informers);
    await informers.start();
    ctrl.start();
    await until('r1 is marked unreachable', async () => unreachableTaints(await getNode('r1')).length === 2);
    assert.equal(ready(await getNode('r1'))?.status, 'Unknown');
    await until('its pod is evicted', async () => (await podState('on-r1')) === 'deleted');
    // An agent that is back renews on and on (else it would be marked again 300 ms later).
    await until('the taints are lifted', async () => {
      await renew('r1', informers);
      return unreachableTaints(await getNode('r1')).length === 0;
    });
  });
});

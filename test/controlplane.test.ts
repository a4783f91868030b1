// The scheduler and controllers on a real 3-master cluster, with fake nodes (Nodes and
// Leases written through the API, a stand-in kubelet that marks bound pods ready): they run
// on the leader only, spread and bind a Deployment, scale it, roll it, replace the pods of a
// node that stopped renewing its Lease, and finish a rolling update after the leader is
// SIGKILLed without ever running more pods than replicas + maxSurge.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, ProcessCluster } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';
import { FakeNodes } from './support/fake-nodes.ts';
import { until } from './support/until.ts';

const NS = '/apis/apps/v1/namespaces/default/deployments';

function deployment(name: string, replicas: number, version: string, strategy: object = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: 0 } }): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy,
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image: 'process', command: ['sleep', '3600'], env: [{ name: 'VERSION', value: version }], resources: { requests: { cpu: '100m', memory: '64Mi' } } }] },
      },
    },
  };
}

/**
 * Follows every pod of an app through a watch (resumed across masters) and records, after
 * each event, how many exist without a deletionTimestamp: the evidence for maxSurge.
 */
function trackPods(api: HttpApi, app: string): { max: () => number; active: () => number; created: Set<string>; stop: () => void } {
  const live = new Map<string, boolean>();
  const created = new Set<string>();
  let max = 0;
  const stop = api.watch(`/api/v1/namespaces/default/pods?labelSelector=app%3D${app}`, '', (type, pod) => {
    const uid = pod.metadata.uid as string;
    if (type === 'DELETED') live.delete(uid);
    else {
      created.add(uid);
      live.set(uid, pod.metadata.deletionTimestamp === undefined);
    }
    max = Math.max(max, [...live.values()].filter(Boolean).length);
  });
  return { max: () => max, active: () => [...live.values()].filter(Boolean).length, created, stop };
}

describe('scheduler and controllers on a 3-master cluster', { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  let api: HttpApi;
  let nodes: FakeNodes;

  const pods = async (app: string): Promise<any[]> => (await api.ok('GET', `/api/v1/namespaces/default/pods?labelSelector=app%3D${app}`)).items;
  const leaderName = (): Promise<string> => cluster.leader();

  before(async () => {
    cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, nodeLifecycle: { gracePeriodSeconds: 2, evictionSeconds: 2 } });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    api = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    nodes = new FakeNodes(api);
    for (const n of ['w1', 'w2', 'w3']) await nodes.register(n);
    nodes.start();
  });
  after(async () => {
    nodes?.stop();
    api?.close();
    await cluster?.stop();
  });

  test('they run on the leader only; a Deployment of 30 pods is spread over the nodes, bound and ready', async () => {
    const leader = await leaderName();
    const started = await until('the leader runs the control plane', async () => cluster.messages.find((m) => m.name === leader && /^the scheduler and controllers run on this master/.test(m.msg)));
    assert.ok(started);
    assert.deepEqual([...new Set(cluster.messages.filter((m) => /^the scheduler and controllers run/.test(m.msg)).map((m) => m.name))], [leader], 'only the leader started them');

    await api.ok('POST', NS, deployment('spread', 30, 'v1'), 201);
    const bound = await until('30 pods are bound and ready', async () => {
      const ps = await pods('spread');
      return ps.length === 30 && ps.every((p) => p.spec.nodeName !== undefined && p.status.phase === 'Running') ? ps : undefined;
    }, 60_000);
    const perNode = new Map<string, number>();
    for (const p of bound) perNode.set(p.spec.nodeName, (perNode.get(p.spec.nodeName) ?? 0) + 1);
    assert.deepEqual([...perNode.keys()].sort(), ['w1', 'w2', 'w3']);
    for (const [node, n] of perNode) assert.ok(n >= 8 && n <= 12, `${node} got ${n} of 30 pods: spread evenly`);
    const status = await until('the deployment reports 30 available', async () => {
      const d = await api.ok('GET', `${NS}/spread`);
      return d.status?.availableReplicas === 30 && d.status?.updatedReplicas === 30 ? d.status : undefined;
    });
    assert.ok(status.conditions.some((c: any) => c.type === 'Available' && c.status === 'True'));
  });

  test('scaling and a rolling update converge, never above replicas + maxSurge', async () => {
    await api.ok('POST', NS, deployment('roll', 6, 'v1'), 201);
    const track = trackPods(api, 'roll');
    try {
      await until('6 ready pods', async () => (await pods('roll')).filter((p) => p.status.phase === 'Running').length === 6);
      await api.ok('PATCH', `${NS}/roll/scale`, { spec: { replicas: 10 } }, 200, 'application/merge-patch+json');
      await until('10 ready pods', async () => (await pods('roll')).filter((p) => p.status.phase === 'Running').length === 10);
      const before = new Set((await pods('roll')).map((p) => p.metadata.uid as string));
      await api.ok('PATCH', `${NS}/roll`, { spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'VERSION', value: 'v2' }] }] } } } }, 200, 'application/strategic-merge-patch+json');
      const done = await until('the rollout completes', async () => {
        const ps = await pods('roll');
        const d = await api.ok('GET', `${NS}/roll`);
        return ps.length === 10 && ps.every((p) => !before.has(p.metadata.uid) && p.status.phase === 'Running' && p.spec.containers[0].env[0].value === 'v2') && d.status?.updatedReplicas === 10 && d.status?.availableReplicas === 10 ? d : undefined;
      }, 90_000);
      assert.equal(done.status.replicas, 10);
      assert.ok(track.max() <= 12, `at most 10 + maxSurge 2 pods at once, saw ${track.max()}`);
      const rss = (await api.ok('GET', '/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Droll')).items;
      assert.equal(rss.length, 2, 'one ReplicaSet per template');
      assert.deepEqual(rss.map((r: any) => r.spec.replicas).sort(), [0, 10]);
    } finally {
      track.stop();
    }
  });

  test('a node whose Lease stops is marked unreachable and its pods are replaced on other nodes', async () => {
    const victim = 'w3';
    const lost = (await pods('spread')).filter((p) => p.spec.nodeName === victim).map((p) => p.metadata.uid as string);
    assert.ok(lost.length > 0);
    nodes.unplug(victim);
    const node = await until('the node is marked unreachable', async () => {
      const n = await api.ok('GET', `/api/v1/nodes/${victim}`);
      const ready = n.status.conditions.find((c: any) => c.type === 'Ready');
      return ready?.status === 'Unknown' && (n.spec.taints ?? []).some((t: any) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute') ? n : undefined;
    }, 20_000);
    assert.ok((node.spec.taints as any[]).some((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoSchedule'));
    await until('30 ready pods again, none on the lost node', async () => {
      const ps = (await pods('spread')).filter((p) => p.metadata.deletionTimestamp === undefined);
      return ps.length === 30 && ps.every((p) => p.spec.nodeName !== victim && p.status.phase === 'Running' && !lost.includes(p.metadata.uid));
    }, 60_000);
  });

  test('the leader is SIGKILLed in the middle of a rolling update; the new leader finishes it within maxSurge', async () => {
    await api.ok('POST', NS, deployment('failover', 12, 'v1', { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 0 } }), 201);
    await until('12 ready pods', async () => (await pods('failover')).filter((p) => p.status.phase === 'Running').length === 12, 60_000);
    const track = trackPods(api, 'failover');
    try {
      await api.ok('PATCH', `${NS}/failover`, { spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'VERSION', value: 'v2' }] }] } } } }, 200, 'application/strategic-merge-patch+json');
      await until('the rollout is under way', async () => (await pods('failover')).some((p) => p.spec.containers[0].env[0].value === 'v2' && p.status.phase === 'Running'));
      const old = await leaderName();
      await cluster.kill(old, 'SIGKILL');
      const atKill = (await pods('failover')).filter((p) => p.spec.containers[0].env[0].value === 'v2' && p.status.phase === 'Running').length;
      assert.ok(atKill < 12, `the rollout was not finished when the leader died (${atKill} of 12 pods updated)`);
      const next = await cluster.leader();
      assert.notEqual(next, old);
      const done = await until('the new leader finishes the rollout', async () => {
        const ps = (await pods('failover')).filter((p) => p.metadata.deletionTimestamp === undefined);
        const d = await api.ok('GET', `${NS}/failover`);
        return ps.length === 12 && ps.every((p) => p.spec.containers[0].env[0].value === 'v2' && p.status.phase === 'Running') && d.status?.updatedReplicas === 12 && d.status?.availableReplicas === 12 ? d : undefined;
      }, 90_000);
      assert.equal(done.status.replicas, 12);
      assert.ok(track.max() <= 15, `at most 12 + maxSurge 3 pods at once across the failover, saw ${track.max()}`);
      assert.ok(cluster.messages.some((m) => m.name === next && /^the scheduler and controllers run on this master/.test(m.msg)), 'the new leader runs them');
      await cluster.start(old);
    } finally {
      track.stop();
    }
  });
});

test('a leader cut off from the others stops its scheduler and controllers; the new leader starts them', { timeout: 60_000 }, async (t) => {
  const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: true });
  t.after(() => cluster.stop());
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  const old = await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  const runs = (name: string) => cluster.messages.filter((m) => m.name === name && /^the scheduler and controllers run on this master/.test(m.msg));
  const stops = (name: string) => cluster.messages.filter((m) => m.name === name && m.msg === 'the scheduler and controllers stopped on this master');
  await until('the leader runs the control plane', async () => runs(old).length === 1);
  const cut = Date.now();
  cluster.isolate(old);
  const stopped = await until('the isolated leader stops its loops', async () => stops(old)[0], 10_000);
  const next = await until('another master leads and runs the loops', async () => cluster.messages.find((m) => m.name !== old && /^the scheduler and controllers run on this master/.test(m.msg)), 10_000);
  // Reported, not asserted as a bound: timing belongs to benchmarks; the order is the point.
  t.diagnostic(`the isolated leader stopped its loops ${stopped.at - cut} ms after the cut; ${next.name} started them ${next.at - cut} ms after it`);
  assert.equal(stopped.line['why'], 'this master no longer leads');
  assert.equal(runs(old).length, 1, 'the isolated master never started them again');
  cluster.heal();
});

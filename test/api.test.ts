// The API server, through the official JavaScript client (@kubernetes/client-node 1.x) and raw
// HTTPS, against a real 3-master cluster of processes: CRUD on pods and deployments through
// different masters, watch semantics, optimistic concurrency, validation, authentication and
// roles, and a watch that stays open on a surviving master while the leader is SIGKILLed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:https';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, Watch, type V1Pod } from '@kubernetes/client-node';
import { AgentClient } from '@flotilla/api';
import { ADMIN_TOKEN, JOIN_TOKEN, ProcessCluster, VIEWER_TOKEN } from './support/masters.ts';
import { deployment, failure, kubeConfig, pod, raw } from './support/kube.ts';

const HISTORY = 500;

let cluster: ProcessCluster;
const core = (master: string, token = ADMIN_TOKEN): CoreV1Api => kubeConfig(cluster, master, token).makeApiClient(CoreV1Api);
const apps = (master: string, token = ADMIN_TOKEN): AppsV1Api => kubeConfig(cluster, master, token).makeApiClient(AppsV1Api);
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

async function namespace(name: string): Promise<void> {
  await core('m1').createNamespace({ body: { metadata: { name } } });
}

interface Seen {
  type: string;
  name: string;
  rv: number;
}

/** Opens a client-node watch; events land in `seen`, the end (if any) in `ended`. */
async function watch(master: string, path: string, query: Record<string, string | boolean>): Promise<{ seen: Seen[]; ended: { err: unknown } | undefined; stop: () => void }> {
  const state = { seen: [] as Seen[], ended: undefined as { err: unknown } | undefined, stop: () => undefined as void };
  const ctl = await new Watch(kubeConfig(cluster, master, ADMIN_TOKEN)).watch(
    path,
    query,
    (type, obj: { metadata?: { name?: string; resourceVersion?: string } }) => state.seen.push({ type, name: obj.metadata?.name ?? '', rv: Number(obj.metadata?.resourceVersion) }),
    (err) => {
      state.ended = { err };
    },
  );
  state.stop = () => ctl.abort();
  return state;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('API server on a 3-master cluster', { timeout: 180_000 }, () => {
  before(async () => {
    // The API alone, as Kubernetes tests its apiserver: no scheduler or controllers changing
    // the objects these tests pin resourceVersions and count watch events on.
    cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, historyRevisions: HISTORY, controlPlane: false });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  });
  after(() => cluster.stop());

  test('discovery, version and the namespaces every cluster starts with', async () => {
    const version = await raw(cluster, 'm2', 'GET', '/version');
    assert.equal(version.status, 200, 'version is served without a token');
    assert.ok(!cluster.messages.some((m) => /^the scheduler and controllers run/.test(m.msg)), 'controlPlane: false keeps them off');
    assert.match(version.json.gitVersion, /^v1\./);
    const groups = await raw(cluster, 'm2', 'GET', '/apis', { token: ADMIN_TOKEN });
    assert.deepEqual(groups.json.groups.map((g: { name: string }) => g.name).sort(), ['apps', 'coordination.k8s.io']);
    const v1 = await raw(cluster, 'm3', 'GET', '/api/v1', { token: ADMIN_TOKEN });
    const names = v1.json.resources.map((r: { name: string }) => r.name);
    for (const r of ['pods', 'pods/status', 'pods/binding', 'pods/log', 'nodes', 'namespaces', 'services', 'endpoints', 'events']) assert.ok(names.includes(r), `/api/v1 lists ${r}`);
    const ns = await core('m3').listNamespace();
    const have = ns.items.map((n) => n.metadata?.name);
    for (const n of ['default', 'kube-system', 'kube-node-lease']) assert.ok(have.includes(n), `namespace ${n} exists`);
  });

  test('pods: create on one master, read on the others, list by label and field, patch, delete', async () => {
    await namespace('crud');
    const created = await core('m1').createNamespacedPod({ namespace: 'crud', body: pod('web-1', { app: 'web', tier: 'front' }) });
    assert.equal(created.metadata?.namespace, 'crud');
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.ok(Number(created.metadata?.resourceVersion) > 0);
    assert.equal(created.status?.phase, 'Pending');
    assert.equal(created.spec?.restartPolicy, 'Always', 'defaults are filled in');
    await core('m2').createNamespacedPod({ namespace: 'crud', body: pod('web-2', { app: 'web', tier: 'back' }) });
    await core('m3').createNamespacedPod({ namespace: 'crud', body: pod('db-1', { app: 'db' }) });

    // Reads are linearizable on every master: each sees all three right after the writes.
    for (const m of cluster.names) {
      const got = await core(m).readNamespacedPod({ namespace: 'crud', name: 'web-1' });
      assert.equal(got.metadata?.uid, created.metadata?.uid);
      const all = await core(m).listNamespacedPod({ namespace: 'crud' });
      assert.deepEqual(all.items.map((p) => p.metadata?.name), ['db-1', 'web-1', 'web-2']);
    }
    const web = await core('m2').listNamespacedPod({ namespace: 'crud', labelSelector: 'app=web,tier notin (back)' });
    assert.deepEqual(web.items.map((p) => p.metadata?.name), ['web-1']);
    const byName = await core('m3').listPodForAllNamespaces({ fieldSelector: 'metadata.name=db-1,metadata.namespace=crud' });
    assert.deepEqual(byName.items.map((p) => p.metadata?.name), ['db-1']);
    const pending = await core('m1').listNamespacedPod({ namespace: 'crud', fieldSelector: 'status.phase=Pending,spec.nodeName=' });
    assert.equal(pending.items.length, 3);

    // Strategic merge: containers merge by name, labels merge.
    const patched = await core('m2').patchNamespacedPod(
      { namespace: 'crud', name: 'web-1', body: { metadata: { labels: { version: 'v2' } }, spec: { containers: [{ name: 'main', image: 'busybox:1.36' }] } } },
      strategic,
    );
    assert.deepEqual(patched.metadata?.labels, { app: 'web', tier: 'front', version: 'v2' });
    assert.equal(patched.spec?.containers.length, 1);
    assert.equal(patched.spec?.containers[0]?.image, 'busybox:1.36');
    assert.deepEqual(patched.spec?.containers[0]?.command, ['sleep', '3600'], 'the merge kept the fields the patch did not name');
    // Merge patch: null removes a key.
    const merged = await core('m3').patchNamespacedPod({ namespace: 'crud', name: 'web-1', body: { metadata: { labels: { tier: null } } } }, merge);
    assert.deepEqual(merged.metadata?.labels, { app: 'web', version: 'v2' });
    // JSON patch (the client's default content type).
    const jp = await core('m1').patchNamespacedPod({ namespace: 'crud', name: 'web-1', body: [{ op: 'add', path: '/metadata/annotations', value: { note: 'hi' } }] });
    assert.deepEqual(jp.metadata?.annotations, { note: 'hi' });
    // An immutable field cannot be patched.
    const immutable = await failure(core('m1').patchNamespacedPod({ namespace: 'crud', name: 'web-1', body: { spec: { restartPolicy: 'Never' } } }, merge));
    assert.equal(immutable.code, 422);

    await core('m3').deleteNamespacedPod({ namespace: 'crud', name: 'web-1', gracePeriodSeconds: 0 });
    const gone = await failure(core('m1').readNamespacedPod({ namespace: 'crud', name: 'web-1' }));
    assert.equal(gone.code, 404);
    assert.equal(gone.status.reason, 'NotFound');
    assert.equal(gone.status.kind, 'Status');
    const left = await core('m2').listNamespacedPod({ namespace: 'crud' });
    assert.deepEqual(left.items.map((p) => p.metadata?.name), ['db-1', 'web-2']);
    // A pod that is bound to a node and deleted with a grace period is only marked for deletion
    // (its agent stops it and removes it).
    await core('m1').createNamespacedPod({ namespace: 'crud', body: pod('bound', {}, { nodeName: 'w1' }) });
    const marked = await core('m1').deleteNamespacedPod({ namespace: 'crud', name: 'bound', gracePeriodSeconds: 30 });
    assert.ok(marked.metadata?.deletionTimestamp !== undefined, 'the pod carries a deletionTimestamp');
    assert.equal(marked.metadata?.deletionGracePeriodSeconds, 30);
    const still = await core('m2').readNamespacedPod({ namespace: 'crud', name: 'bound' });
    assert.ok(still.metadata?.deletionTimestamp !== undefined);
  });

  test('deployments: create, list, get, patch, scale, delete', async () => {
    await namespace('apps');
    const d = await apps('m2').createNamespacedDeployment({ namespace: 'apps', body: deployment('web', 2) });
    assert.equal(d.metadata?.generation, 1);
    assert.equal(d.spec?.strategy?.type, 'RollingUpdate');
    assert.equal(d.spec?.strategy?.rollingUpdate?.maxSurge, '25%');
    assert.equal(d.spec?.revisionHistoryLimit, 10);
    const listed = await apps('m3').listNamespacedDeployment({ namespace: 'apps' });
    assert.deepEqual(listed.items.map((x) => x.metadata?.name), ['web']);
    const patched = await apps('m1').patchNamespacedDeployment({ namespace: 'apps', name: 'web', body: { spec: { replicas: 5 } } }, merge);
    assert.equal(patched.spec?.replicas, 5);
    assert.equal(patched.metadata?.generation, 2, 'a spec change bumps the generation');
    const scale = await apps('m3').readNamespacedDeploymentScale({ namespace: 'apps', name: 'web' });
    assert.equal(scale.spec?.replicas, 5);
    assert.equal(scale.status?.selector, 'app=web');
    scale.spec = { replicas: 7 };
    await apps('m2').replaceNamespacedDeploymentScale({ namespace: 'apps', name: 'web', body: scale });
    assert.equal((await apps('m1').readNamespacedDeployment({ namespace: 'apps', name: 'web' })).spec?.replicas, 7);
    // A status update does not touch the spec (and a spec change through status is ignored).
    const cur = await apps('m1').readNamespacedDeployment({ namespace: 'apps', name: 'web' });
    cur.status = { replicas: 3, readyReplicas: 1 };
    cur.spec!.replicas = 1;
    const st = await apps('m1').replaceNamespacedDeploymentStatus({ namespace: 'apps', name: 'web', body: cur });
    assert.equal(st.status?.replicas, 3);
    assert.equal(st.spec?.replicas, 7);
    // Invalid selector/template combination: 422.
    const bad = deployment('mismatch', 1);
    bad.spec.template.metadata.labels = { app: 'other' };
    const invalid = await failure(apps('m1').createNamespacedDeployment({ namespace: 'apps', body: bad }));
    assert.equal(invalid.code, 422);
    assert.ok(invalid.status.details.causes.some((c: { field: string }) => c.field === 'spec.template.metadata.labels'));
    await apps('m3').deleteNamespacedDeployment({ namespace: 'apps', name: 'web', propagationPolicy: 'Background' });
    assert.equal((await apps('m2').listNamespacedDeployment({ namespace: 'apps' })).items.length, 0);
  });

  test('a stale resourceVersion gets 409 Conflict and changes nothing', async () => {
    await namespace('occ');
    const p = await core('m1').createNamespacedPod({ namespace: 'occ', body: pod('p', { v: '1' }) });
    const first = structuredClone(p) as V1Pod;
    first.metadata!.labels = { v: '2' };
    const updated = await core('m2').replaceNamespacedPod({ namespace: 'occ', name: 'p', body: first });
    assert.ok(Number(updated.metadata?.resourceVersion) > Number(p.metadata?.resourceVersion));
    const stale = structuredClone(p) as V1Pod;
    stale.metadata!.labels = { v: 'stale' };
    const res = await failure(core('m3').replaceNamespacedPod({ namespace: 'occ', name: 'p', body: stale }));
    assert.equal(res.code, 409);
    assert.equal(res.status.reason, 'Conflict');
    assert.match(res.status.message, /the object has been modified/);
    const now = await core('m1').readNamespacedPod({ namespace: 'occ', name: 'p' });
    assert.deepEqual(now.metadata?.labels, { v: '2' });
    assert.equal(now.metadata?.resourceVersion, updated.metadata?.resourceVersion);
    // Creating what exists is also a 409, AlreadyExists.
    const dup = await failure(core('m2').createNamespacedPod({ namespace: 'occ', body: pod('p') }));
    assert.equal(dup.code, 409);
    assert.equal(dup.status.reason, 'AlreadyExists');
  });

  test('invalid objects get 422 with the failing fields, and nothing is stored', async () => {
    await namespace('bad');
    const body = pod('Bad_Name', { 'bad key!': 'x' });
    body.spec.containers[0].resources.requests.memory = '12 apples';
    body.spec.containers[0].ports = [{ containerPort: 70000 }];
    const res = await failure(core('m2').createNamespacedPod({ namespace: 'bad', body }));
    assert.equal(res.code, 422);
    assert.equal(res.status.reason, 'Invalid');
    const fields = res.status.details.causes.map((c: { field: string }) => c.field).sort();
    assert.deepEqual(fields, ['metadata.labels', 'metadata.name', 'spec.containers[0].ports[0].containerPort', 'spec.containers[0].resources.requests[memory]']);
    const noContainers = await failure(core('m3').createNamespacedPod({ namespace: 'bad', body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
    assert.equal(noContainers.code, 422);
    assert.deepEqual(noContainers.status.details.causes.map((c: { field: string }) => c.field), ['spec.containers']);
    assert.equal((await core('m1').listNamespacedPod({ namespace: 'bad' })).items.length, 0);
    // A namespace that does not exist: 404.
    const nons = await failure(core('m1').createNamespacedPod({ namespace: 'nowhere', body: pod('x') }));
    assert.equal(nons.code, 404);
  });

  test('bad requests: malformed JSON 400, wrong kind 400, huge body 413, bad selector 400, unknown path 404', async () => {
    const r = await raw(cluster, 'm1', 'POST', '/api/v1/namespaces/default/pods', { token: ADMIN_TOKEN, body: '{"metadata": {"name": ' });
    assert.equal(r.status, 400);
    assert.equal(r.json.kind, 'Status');
    assert.match(r.json.message, /not valid JSON/);
    const kind = await raw(cluster, 'm1', 'POST', '/api/v1/namespaces/default/pods', { token: ADMIN_TOKEN, body: JSON.stringify({ kind: 'Service', apiVersion: 'v1', metadata: { name: 'x' } }) });
    assert.equal(kind.status, 400);
    const big = await raw(cluster, 'm2', 'POST', '/api/v1/namespaces/default/pods', { token: ADMIN_TOKEN, body: JSON.stringify({ metadata: { name: 'big', annotations: { a: 'x'.repeat(4 * 1024 * 1024) } } }) });
    assert.equal(big.status, 413);
    assert.equal(big.json.reason, 'RequestEntityTooLarge');
    const sel = await raw(cluster, 'm3', 'GET', '/api/v1/pods?labelSelector=a%20in%20(', { token: ADMIN_TOKEN });
    assert.equal(sel.status, 400);
    const field = await raw(cluster, 'm3', 'GET', '/api/v1/pods?fieldSelector=spec.image%3Dx', { token: ADMIN_TOKEN });
    assert.equal(field.status, 400);
    assert.match(field.json.message, /spec\.image/);
    const proto = await raw(cluster, 'm1', 'PATCH', '/api/v1/namespaces/crud/pods/db-1', { token: ADMIN_TOKEN, body: '{"\\u005f_proto__": {"polluted": true}}', headers: { 'content-type': 'application/merge-patch+json' } });
    assert.equal(proto.status, 400, proto.text);
    assert.match(proto.json.message, /__proto__/);
    const nothing = await raw(cluster, 'm3', 'GET', '/api/v1/widgets', { token: ADMIN_TOKEN });
    assert.equal(nothing.status, 404);
    // After all that, every master still serves.
    for (const m of cluster.names) assert.equal((await raw(cluster, m, 'GET', '/readyz')).status, 200);
  });

  test('Table output for command-line clients', async () => {
    const r = await raw(cluster, 'm2', 'GET', '/api/v1/namespaces/crud/pods', { token: ADMIN_TOKEN, headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.kind, 'Table');
    assert.deepEqual(r.json.columnDefinitions.slice(0, 5).map((c: { name: string }) => c.name), ['Name', 'Ready', 'Status', 'Restarts', 'Age']);
    assert.ok(r.json.rows.length >= 2);
    assert.equal(r.json.rows[0].cells[0], 'bound');
  });

  test('list with limit and continue pages through a consistent snapshot', async () => {
    await namespace('paged');
    await Promise.all(Array.from({ length: 25 }, (_, i) => core(cluster.names[i % 3]!).createNamespacedPod({ namespace: 'paged', body: pod(`p-${String(i).padStart(2, '0')}`) })));
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    let rv: string | undefined;
    do {
      const page = await core(cluster.names[pages % 3]!).listNamespacedPod({ namespace: 'paged', limit: 10, ...(token === undefined ? {} : { _continue: token }) });
      rv ??= page.metadata?.resourceVersion;
      assert.equal(page.metadata?.resourceVersion, rv, 'every page is read at the first page’s revision');
      names.push(...page.items.map((p) => p.metadata!.name!));
      token = page.metadata?._continue;
      pages++;
      if (pages === 1) await core('m1').createNamespacedPod({ namespace: 'paged', body: pod('p-99') }); // not in this listing
    } while (token !== undefined && token !== '');
    assert.equal(pages, 3);
    assert.deepEqual(names, Array.from({ length: 25 }, (_, i) => `p-${String(i).padStart(2, '0')}`));
  });

  test('watch from a resourceVersion replays exactly the later changes, in order', async () => {
    await namespace('watched');
    const a = await core('m1').createNamespacedPod({ namespace: 'watched', body: pod('a', { app: 'x' }) });
    await core('m2').createNamespacedPod({ namespace: 'watched', body: pod('b', { app: 'x' }) });
    await core('m3').patchNamespacedPod({ namespace: 'watched', name: 'a', body: { metadata: { labels: { app: 'y' } } } }, merge);
    await core('m1').createNamespacedPod({ namespace: 'watched', body: pod('c', { app: 'x' }) });
    await core('m2').deleteNamespacedPod({ namespace: 'watched', name: 'b', gracePeriodSeconds: 0 });

    const w = await watch('m3', '/api/v1/namespaces/watched/pods', { resourceVersion: a.metadata!.resourceVersion!, labelSelector: 'app=x' });
    await until('the watch replays four events', () => w.seen.length >= 4);
    // a left the selection (relabelled to y): for this watcher it was deleted.
    assert.deepEqual(
      w.seen.map((e) => `${e.type} ${e.name}`),
      ['ADDED b', 'DELETED a', 'ADDED c', 'DELETED b'],
    );
    for (let i = 1; i < w.seen.length; i++) assert.ok(w.seen[i]!.rv > w.seen[i - 1]!.rv, 'resourceVersions increase');
    // A new change arrives live.
    await core('m1').createNamespacedPod({ namespace: 'watched', body: pod('d', { app: 'x' }) });
    await until('the live event arrives', () => w.seen.length >= 5);
    assert.equal(`${w.seen[4]!.type} ${w.seen[4]!.name}`, 'ADDED d');
    assert.equal(w.ended, undefined, 'the watch is still open');
    w.stop();

    // Without a resourceVersion: the current objects first, as ADDED.
    const fresh = await watch('m2', '/api/v1/namespaces/watched/pods', {});
    await until('initial events', () => fresh.seen.length >= 3);
    assert.deepEqual(fresh.seen.map((e) => `${e.type} ${e.name}`).sort(), ['ADDED a', 'ADDED c', 'ADDED d']);
    fresh.stop();
  });

  test('a watch from a compacted resourceVersion gets 410 Gone, as does a stale continue token', async () => {
    await namespace('old');
    const first = await core('m1').createNamespacedPod({ namespace: 'old', body: pod('first') });
    await core('m1').createNamespacedPod({ namespace: 'old', body: pod('second') });
    const page = await core('m2').listNamespacedPod({ namespace: 'old', limit: 1 });
    assert.ok(page.metadata?._continue);
    // Push the history window past both: the leader compacts to HISTORY revisions behind once
    // twice that many have piled up.
    const events = Array.from({ length: 2 * HISTORY + 50 }, (_, i) => i);
    const api = [core('m1'), core('m2'), core('m3')];
    for (let i = 0; i < events.length; i += 50) {
      await Promise.all(
        events.slice(i, i + 50).map((k) =>
          api[k % 3]!.createNamespacedEvent({
            namespace: 'old',
            body: { metadata: { name: `e${k}` }, involvedObject: { kind: 'Pod', name: 'first', namespace: 'old' }, reason: 'Filler', message: 'history filler', type: 'Normal' },
          }),
        ),
      );
    }
    await until('the history is compacted', async () => {
      const r = await raw(cluster, 'm3', 'GET', `/api/v1/namespaces/old/pods?watch=true&resourceVersion=${first.metadata!.resourceVersion}&timeoutSeconds=1`, { token: ADMIN_TOKEN });
      return r.text.includes('"ERROR"');
    });
    const w = await watch('m3', '/api/v1/namespaces/old/pods', { resourceVersion: first.metadata!.resourceVersion! });
    await until('the watch ends', () => w.ended !== undefined || w.seen.length > 0);
    // client-node reports the ERROR event (a Status with code 410) as an event of type ERROR.
    assert.equal(w.seen[0]?.type, 'ERROR');
    const r = await raw(cluster, 'm3', 'GET', `/api/v1/namespaces/old/pods?watch=true&resourceVersion=${first.metadata!.resourceVersion}`, { token: ADMIN_TOKEN });
    const line = JSON.parse(r.text.trim().split('\n')[0]!);
    assert.equal(line.type, 'ERROR');
    assert.equal(line.object.code, 410);
    assert.equal(line.object.reason, 'Expired');
    const cont = await failure(core('m1').listNamespacedPod({ namespace: 'old', limit: 1, _continue: page.metadata!._continue! }));
    assert.equal(cont.code, 410);
    assert.equal(cont.status.reason, 'Expired');
    // A plain list still works and still has both pods.
    assert.equal((await core('m1').listNamespacedPod({ namespace: 'old' })).items.length, 2);
  });

  test('401 without a valid token, 403 beyond the role, and nothing changes', async () => {
    const none = await raw(cluster, 'm1', 'GET', '/api/v1/pods');
    assert.equal(none.status, 401);
    assert.equal(none.json.reason, 'Unauthorized');
    const wrong = await failure(core('m2', 'not-a-token-of-this-cluster').listNamespace());
    assert.equal(wrong.code, 401);
    // Anonymous health checks and version are allowed.
    assert.equal((await raw(cluster, 'm1', 'GET', '/healthz')).status, 200);

    const viewer = core('m3', VIEWER_TOKEN);
    assert.ok((await viewer.listNamespacedPod({ namespace: 'crud' })).items.length > 0, 'a viewer may read');
    const denied = await failure(viewer.createNamespacedPod({ namespace: 'crud', body: pod('sneaky') }));
    assert.equal(denied.code, 403);
    assert.equal(denied.status.reason, 'Forbidden');
    assert.match(denied.status.message, /read-only/);
    const delDenied = await failure(viewer.deleteNamespacedPod({ namespace: 'crud', name: 'db-1' }));
    assert.equal(delDenied.code, 403);
    await core('m1').readNamespacedPod({ namespace: 'crud', name: 'db-1' });
    assert.equal((await failure(core('m1').readNamespacedPod({ namespace: 'crud', name: 'sneaky' }))).code, 404);

    // An agent joins with the join token and gets a node credential.
    const badJoin = await raw(cluster, 'm2', 'POST', '/flotilla/v1/join', { token: 'wrong-join-token-000000', body: JSON.stringify({ nodeName: 'w1' }) });
    assert.equal(badJoin.status, 401);
    const joined = await raw(cluster, 'm2', 'POST', '/flotilla/v1/join', { token: JOIN_TOKEN, body: JSON.stringify({ nodeName: 'w1' }) });
    assert.equal(joined.status, 200);
    const nodeToken = joined.json.token as string;
    // The credential works on every master (it is replicated).
    let w1!: CoreV1Api;
    await until('the node credential reaches m3', async () => {
      w1 = core('m3', nodeToken);
      return w1.listNode().then(
        () => true,
        () => false,
      );
    });
    await w1.createNode({ body: { metadata: { name: 'w1', labels: { 'kubernetes.io/hostname': 'w1' } }, status: { capacity: { cpu: '2', memory: '4Gi' } } } });
    const other = await failure(w1.createNode({ body: { metadata: { name: 'w2' } } }));
    assert.equal(other.code, 403);
    assert.match(other.status.message, /only its own Node/);
    assert.equal((await failure(core('m1').readNode({ name: 'w2' }))).code, 404);
    // It may update the status of pods bound to it, not of others.
    const mine = await core('m1').readNamespacedPod({ namespace: 'crud', name: 'bound' });
    mine.status = { ...mine.status, phase: 'Running' };
    const ok = await w1.replaceNamespacedPodStatus({ namespace: 'crud', name: 'bound', body: mine });
    assert.equal(ok.status?.phase, 'Running');
    const notMine = await core('m1').readNamespacedPod({ namespace: 'crud', name: 'db-1' });
    notMine.status = { ...notMine.status, phase: 'Running' };
    const forbidden = await failure(w1.replaceNamespacedPodStatus({ namespace: 'crud', name: 'db-1', body: notMine }));
    assert.equal(forbidden.code, 403);
    const patchForbidden = await failure(w1.patchNamespacedPodStatus({ namespace: 'crud', name: 'db-1', body: { status: { phase: 'Failed' } } }, merge));
    assert.equal(patchForbidden.code, 403);
    assert.equal((await core('m1').readNamespacedPod({ namespace: 'crud', name: 'db-1' })).status?.phase, 'Pending');
    const createForbidden = await failure(w1.createNamespacedPod({ namespace: 'crud', body: pod('mine') }));
    assert.equal(createForbidden.code, 403);
    const deployForbidden = await failure(kubeConfig(cluster, 'm1', nodeToken).makeApiClient(AppsV1Api).listDeploymentForAllNamespaces());
    assert.equal(deployForbidden.code, 403);
  });

  test('agents: a node credential opens the agent WebSocket; calls and watches have the node role', async () => {
    const joined = await raw(cluster, 'm3', 'POST', '/flotilla/v1/join', { token: JOIN_TOKEN, body: JSON.stringify({ nodeName: 'w2' }) });
    assert.equal(joined.status, 200);
    const token = joined.json.token as string;
    await until('the credential reaches m1', async () => (await raw(cluster, 'm1', 'GET', '/api/v1/nodes', { token })).status === 200);
    const agent = new AgentClient({ apiUrls: cluster.names.map((n) => cluster.apiUrl(n)), token, ca: cluster.caCert() });
    try {
      const node = await agent.request('POST', '/api/v1/nodes', { body: { metadata: { name: 'w2' }, status: { capacity: { cpu: '4', memory: '8Gi' } } } });
      assert.equal(node.code, 201);
      const other = await agent.request<{ reason: string; message: string }>('POST', '/api/v1/nodes', { body: { metadata: { name: 'w9' } } });
      assert.equal(other.code, 403);
      assert.equal(other.body.reason, 'Forbidden');
      const bad = await agent.request<{ code: number; message: string }>('FROB', '/api/v1/nodes');
      assert.equal(bad.code, 400);
      assert.match(bad.body.message, /method must be/);
      // A "__proto__" key does not survive msgpack decoding as a key (or is refused): either
      // way nothing changes.
      const proto = await agent.request('PATCH', '/api/v1/nodes/w2', { body: JSON.parse('{"__proto__": {"spec": {"unschedulable": true}}}') });
      assert.ok(proto.code === 200 || proto.code === 400, String(proto.code));
      assert.equal((await core('m1').readNode({ name: 'w2' })).spec?.unschedulable, undefined);

      // Its pods: a watch by spec.nodeName sees the pod bound to it, not the other one.
      await namespace('agents');
      const seen: string[] = [];
      const cancel = await agent.watch('/api/v1/pods', { fieldSelector: 'spec.nodeName=w2' }, { event: (type, o) => seen.push(`${type} ${(o as { metadata: { name: string } }).metadata.name}`), end: () => seen.push('END') });
      await core('m1').createNamespacedPod({ namespace: 'agents', body: pod('for-w1', {}, { nodeName: 'w1' }) });
      await core('m2').createNamespacedPod({ namespace: 'agents', body: pod('for-w2', {}, { nodeName: 'w2' }) });
      await until('the agent sees its pod', () => seen.includes('ADDED for-w2'));
      const status = await agent.request<{ status: { phase: string } }>('PATCH', '/api/v1/namespaces/agents/pods/for-w2/status', { body: { status: { phase: 'Running', podIP: '127.0.0.1' } } });
      assert.equal(status.code, 200);
      assert.equal(status.body.status.phase, 'Running');
      await until('the agent sees the change', () => seen.includes('MODIFIED for-w2'));
      const notMine = await agent.request('PATCH', '/api/v1/namespaces/agents/pods/for-w1/status', { body: { status: { phase: 'Running' } } });
      assert.equal(notMine.code, 403);
      assert.ok(!seen.some((e) => e.includes('for-w1')), 'the other node’s pod is not in this watch');
      cancel();
      // A watch the node may not make ends with an ERROR event carrying the Status.
      const denied: string[] = [];
      await agent.watch('/apis/apps/v1/deployments', {}, { event: (type, o) => denied.push(`${type} ${(o as { code?: number }).code}`), end: () => denied.push('END') });
      await until('the refused watch ends', () => denied.includes('END'));
      assert.deepEqual(denied, ['ERROR 403', 'END']);
    } finally {
      agent.close();
    }
    // Only node credentials may connect: an admin token is refused at the upgrade.
    const admin = new AgentClient({ apiUrls: [cluster.apiUrl('m1')], token: ADMIN_TOKEN, ca: cluster.caCert() });
    try {
      await assert.rejects(admin.request('GET', '/api/v1/nodes', { timeoutMs: 1500 }), /no master could be reached/);
    } finally {
      admin.close();
    }
  });

  // Last: it kills a master.
  test('a watch kept open on a follower while the leader is SIGKILLed misses no event', async () => {
    await namespace('chaos');
    const leader = await cluster.leader();
    const follower = cluster.names.find((n) => n !== leader)!;
    const start = await core(follower).listNamespacedPod({ namespace: 'chaos' });
    const w = await watch(follower, '/api/v1/namespaces/chaos/pods', { resourceVersion: start.metadata!.resourceVersion!, allowWatchBookmarks: true });

    // Writers go through every master in turn; a failed call is retried on the next one (a
    // create that did commit before its master died answers AlreadyExists when retried).
    const N = 300;
    const acked = new Set<string>();
    let next = 0;
    let killed = false;
    const writer = async (id: number): Promise<void> => {
      let m = id;
      for (;;) {
        const i = next++;
        if (i >= N) return;
        const name = `p-${i}`;
        for (let attempt = 0; ; attempt++) {
          const master = cluster.names[m++ % 3]!;
          if (!cluster.running(master)) continue;
          try {
            await core(master).createNamespacedPod({ namespace: 'chaos', body: pod(name, { i: String(i) }) });
            acked.add(name);
            break;
          } catch (err) {
            const code = (err as { code?: number }).code;
            if (code === 409) {
              acked.add(name);
              break;
            }
            if (attempt > 200) throw err;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
        if (i === 100 && !killed) {
          killed = true;
          await cluster.kill(leader, 'SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    assert.ok(killed);
    assert.equal(acked.size, N);

    await until('the watch delivers every create', () => w.seen.filter((e) => e.type === 'ADDED').length >= N, 30_000);
    assert.equal(w.ended, undefined, 'the watch on the surviving master never ended');
    const changes = w.seen.filter((e) => e.type !== 'BOOKMARK');
    assert.ok(changes.every((e) => e.type === 'ADDED'), `only ADDED events: ${changes.filter((e) => e.type !== 'ADDED').map((e) => e.type).join(',')}`);
    assert.equal(new Set(changes.map((e) => e.name)).size, changes.length, 'no event twice');
    for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.rv > changes[i - 1]!.rv, 'in resourceVersion order');
    // The watch saw exactly what the store holds: same names, same resourceVersions.
    const final = await core(follower).listNamespacedPod({ namespace: 'chaos' });
    assert.deepEqual(
      changes.map((e) => `${e.name}@${e.rv}`).sort(),
      final.items.map((p) => `${p.metadata!.name}@${p.metadata!.resourceVersion}`).sort(),
    );
    w.stop();

    // The killed master comes back and serves again.
    await cluster.start(leader);
    await cluster.apiReady(leader);
    assert.equal((await core(leader).listNamespacedPod({ namespace: 'chaos' })).items.length, N);
  });
});

test('over its in-flight limit a request waits its turn, then gets 429 with Retry-After and does nothing; below it, it serves again', { timeout: 60_000 }, async (t) => {
  const small = await ProcessCluster.create({ masters: 1, api: true, proxied: false, apiServer: { maxMutatingRequestsInFlight: 1 } });
  t.after(() => small.stop());
  await small.start('m1');
  await small.leader();
  await small.apiReady('m1');
  const path = '/api/v1/namespaces/default/pods';
  // A create whose body is still arriving holds the one slot for changes.
  const body = Buffer.from(JSON.stringify(pod('slow')));
  let slowDone!: (status: number) => void;
  const slowStatus = new Promise<number>((r) => (slowDone = r));
  const slow = request(new URL(path, small.apiUrl('m1')), { method: 'POST', ca: small.caCert(), headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
    res.resume();
    res.on('end', () => slowDone(res.statusCode ?? 0));
  });
  slow.write(body.subarray(0, 10));
  await new Promise((r) => setTimeout(r, 300));
  const refused = await raw(small, 'm1', 'POST', path, { token: ADMIN_TOKEN, body: JSON.stringify(pod('refused')) });
  assert.equal(refused.status, 429, refused.text);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(refused.json.reason, 'TooManyRequests');
  // It waited for the seat as long as a queue waits (5 s), then was refused.
  assert.match(refused.json.message, /serving 1 changes at once and none was free within 5000 ms; retry in a second/);
  // Reads have their own limit (default 400), so they still go through.
  assert.equal((await raw(small, 'm1', 'GET', path, { token: ADMIN_TOKEN })).status, 200);
  slow.end(body.subarray(10));
  assert.equal(await slowStatus, 201);
  const later = await raw(small, 'm1', 'POST', path, { token: ADMIN_TOKEN, body: JSON.stringify(pod('after')) });
  assert.equal(later.status, 201, later.text);
  const names = (await raw(small, 'm1', 'GET', path, { token: ADMIN_TOKEN })).json.items.map((p: { metadata: { name: string } }) => p.metadata.name);
  assert.deepEqual(names.sort(), ['after', 'slow'], 'the refused create was not stored');
});

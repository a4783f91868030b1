// Issue 12 end to end: `kubectl create ns x; kubectl create deployment d --image=i -n x --
// sleep 1000; kubectl delete ns x` on three real master processes. The namespace and the
// Deployment must both be gone, a namespace holding a pod with a grace period must stay
// Terminating (refusing new content) until the pod is finished, and the Raft commit rate —
// measured by the leader's applied index — must stay near idle (it was 227–372 commits a
// second, from ~150 Deployment status rewrites a second). Skipped when kubectl is missing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { KUBECTL, run, type Run } from './support/kube.ts';
import { ProcessCluster } from './support/masters.ts';
import { until } from './support/until.ts';

const BIN = fileURLToPath(new URL('../packages/cli/bin/flotilla.mjs', import.meta.url));

/** Raft commits per second over `ms`, from the leader's applied index. */
async function commitRate(cluster: ProcessCluster, ms: number): Promise<number> {
  const applied = async (): Promise<number> => {
    const leader = await cluster.leader();
    const s = (await cluster.statuses(2000)).find((x) => x.name === leader);
    assert.ok(s?.appliedIndex !== null && s?.appliedIndex !== undefined, `the leader ${leader} reports its applied index`);
    return s.appliedIndex;
  };
  const a0 = await applied();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  const a1 = await applied();
  return ((a1 - a0) * 1000) / (Date.now() - t0);
}

const boundPod = `apiVersion: v1
kind: Pod
metadata: { name: running, namespace: held }
spec:
  nodeName: w1
  terminationGracePeriodSeconds: 300
  containers: [{ name: c, image: i, command: ["sleep", "1000"] }]
`;

test('kubectl delete ns: the namespace and its Deployment go, nothing spins, a terminating namespace refuses content', { skip: KUBECTL === undefined ? 'kubectl is not on the PATH' : false, timeout: 240_000 }, async (t) => {
  const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false });
  const home = mkdtempSync(join(tmpdir(), 'flotilla-ns-'));
  t.after(async () => {
    await cluster.stop();
    rmSync(home, { recursive: true, force: true });
  });
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
  const printed = await run(process.execPath, [BIN, 'kubeconfig', '--config', cluster.file]);
  assert.equal(printed.code, 0, printed.stderr);
  const kubeconfig = join(home, 'kubeconfig');
  writeFileSync(kubeconfig, printed.stdout);
  const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig };
  const kubectl = (...args: string[]): Promise<Run> => run(KUBECTL!, args, env, 120_000);
  const ok = async (...args: string[]): Promise<string> => {
    const r = await kubectl(...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  const idle = await commitRate(cluster, 3000);

  // The reproduction, verbatim. kubectl delete waits until the namespace is gone.
  await ok('create', 'ns', 'x');
  assert.match(await ok('get', 'ns', 'x', '-o', 'jsonpath={.spec.finalizers}'), /kubernetes/);
  await ok('create', 'deployment', 'd', '--image=i', '-n', 'x', '--', 'sleep', '1000');
  await until('the Deployment has its pod', async () => (await ok('get', 'pods', '-n', 'x', '-o', 'name')).trim() !== '');
  await ok('delete', 'ns', 'x', '--timeout=60s');
  const ns = await kubectl('get', 'ns', 'x');
  assert.notEqual(ns.code, 0, 'the namespace is gone');
  assert.match(ns.stderr, /not found/);
  assert.equal((await ok('get', 'deployments,replicasets,pods', '-n', 'x', '-o', 'name')).trim(), '', 'nothing is left in x');
  const after = await commitRate(cluster, 5000);
  // Generous: idle is a few commits a second here; the spin was hundreds.
  assert.ok(after <= idle + 20, `Raft commits ${after.toFixed(1)}/s after the namespace went (idle ${idle.toFixed(1)}/s)`);

  // A pod on a node has a grace period: the namespace waits for its kubelet, Terminating.
  await ok('create', 'ns', 'held');
  writeFileSync(join(home, 'pod.yaml'), boundPod);
  await ok('apply', '-f', join(home, 'pod.yaml'));
  await ok('create', 'deployment', 'd', '--image=i', '-n', 'held', '--', 'sleep', '1000');
  await ok('delete', 'ns', 'held', '--wait=false');
  await until('the Deployment is deleted', async () => (await ok('get', 'deployments', '-n', 'held', '-o', 'name')).trim() === '');
  assert.equal(await ok('get', 'ns', 'held', '-o', 'jsonpath={.status.phase}'), 'Terminating');
  await until('the conditions say a pod remains', async () => /pods\. has 1 resource instances/.test(await ok('get', 'ns', 'held', '-o', 'jsonpath={.status.conditions}')));
  const refused = await kubectl('create', 'deployment', 'late', '--image=i', '-n', 'held');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /unable to create new content in namespace held because it is being terminated/);
  const waiting = await commitRate(cluster, 3000);
  assert.ok(waiting <= idle + 20, `Raft commits ${waiting.toFixed(1)}/s while the namespace waits (idle ${idle.toFixed(1)}/s)`);
  // The kubelet finished the pod.
  await ok('delete', 'pod', 'running', '-n', 'held', '--grace-period=0', '--force');
  await until('the namespace is gone', async () => (await kubectl('get', 'ns', 'held')).code !== 0);
  t.diagnostic(`Raft commits/s: idle ${idle.toFixed(1)}, after x was deleted ${after.toFixed(1)}, while held waited ${waiting.toFixed(1)}`);
  const system = await kubectl('delete', 'ns', 'kube-system');
  assert.notEqual(system.code, 0);
  assert.match(system.stderr, /forbidden/i);
});

// kubectl against a real 3-master cluster, with the kubeconfig `flotilla kubeconfig` prints:
// get, apply (create, then update), get -o yaml, scale, delete -f. Reported as skipped when
// kubectl is not on the PATH.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ADMIN_TOKEN, ProcessCluster } from './support/masters.ts';
import { KUBECTL, kubeConfig, run, type Run } from './support/kube.ts';

const BIN = fileURLToPath(new URL('../packages/cli/bin/flotilla.mjs', import.meta.url));

const deployment = (replicas: number, image: string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: { app: web }
spec:
  replicas: ${replicas}
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${image}
          command: ["httpd", "-f"]
          ports:
            - containerPort: 8080
          resources:
            requests: { cpu: 100m, memory: 64Mi }
`;

test('kubectl: get, apply (create then update), get -o yaml, scale, delete -f', { skip: KUBECTL === undefined ? 'kubectl is not on the PATH' : false, timeout: 180_000 }, async (t) => {
  const cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false });
  const home = mkdtempSync(join(tmpdir(), 'flotilla-kubectl-'));
  t.after(async () => {
    await cluster.stop();
    rmSync(home, { recursive: true, force: true });
  });
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));

  // The kubeconfig, as a user gets it.
  const printed = await run(process.execPath, [BIN, 'kubeconfig', '--config', cluster.file]);
  assert.equal(printed.code, 0, printed.stderr);
  const config = parse(printed.stdout) as { clusters: { cluster: { server: string; 'certificate-authority-data'?: string } }[] };
  assert.match(config.clusters[0]!.cluster.server, /^https:\/\/127\.0\.0\.\d+:\d+$/);
  assert.ok(config.clusters[0]!.cluster['certificate-authority-data'], 'the CA is embedded, so kubectl verifies the server');
  const kubeconfig = join(home, 'kubeconfig');
  writeFileSync(kubeconfig, printed.stdout);
  const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig };
  const kubectl = (...args: string[]): Promise<Run> => run(KUBECTL!, [...args], env);

  // A node to list (agents register theirs; here the admin writes one).
  await kubeConfig(cluster, 'm2', ADMIN_TOKEN).makeApiClient(CoreV1Api).createNode({ body: { metadata: { name: 'w1', labels: { 'kubernetes.io/hostname': 'w1' } } } });

  const get = await kubectl('get', 'nodes,pods', '-A');
  assert.equal(get.code, 0, get.stderr);
  assert.match(get.stdout, /NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION/);
  assert.match(get.stdout, /node\/w1/);

  const manifest = join(home, 'deployment.yaml');
  writeFileSync(manifest, deployment(2, 'busybox:1.36'));
  const created = await kubectl('apply', '-f', manifest);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /deployment.apps\/web created/);

  writeFileSync(manifest, deployment(3, 'busybox:1.37'));
  const updated = await kubectl('apply', '-f', manifest);
  assert.equal(updated.code, 0, updated.stderr);
  assert.match(updated.stdout, /deployment.apps\/web configured/);

  const yaml = await kubectl('get', 'deploy', 'web', '-o', 'yaml');
  assert.equal(yaml.code, 0, yaml.stderr);
  const d = parse(yaml.stdout) as { metadata: { generation: number; annotations: Record<string, string> }; spec: { replicas: number; template: { spec: { containers: { image: string }[] } } } };
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.spec.template.spec.containers[0]!.image, 'busybox:1.37');
  assert.equal(d.metadata.generation, 2);
  assert.ok(d.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], 'client-side apply keeps its annotation');

  const listed = await kubectl('get', 'deployments');
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/);
  // The controllers run: the ReplicaSet and its pods exist, but no node runs them.
  assert.match(listed.stdout, /^web\s+0\/3\s+\d+\s+0\s+/m);

  const scaled = await kubectl('scale', 'deployment', 'web', '--replicas=5');
  assert.equal(scaled.code, 0, scaled.stderr);
  assert.match(scaled.stdout, /deployment.apps\/web scaled/);
  const replicas = await kubectl('get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas}');
  assert.equal(replicas.stdout, '5');

  const deleted = await kubectl('delete', '-f', manifest);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /deployment.apps "web" deleted/);
  const gone = await kubectl('get', 'deploy', 'web');
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /NotFound|not found/);

  // A viewer's kubeconfig reads but cannot write.
  const viewerConfig = await run(process.execPath, [BIN, 'kubeconfig', '--config', cluster.file, '--user', 'viewer']);
  writeFileSync(kubeconfig, viewerConfig.stdout);
  assert.equal((await kubectl('get', 'nodes')).code, 0);
  writeFileSync(manifest, deployment(1, 'busybox'));
  const refused = await kubectl('apply', '-f', manifest);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /forbidden/i);
});

// The flotilla CLI's Kubernetes commands as a user runs them (spawned processes, their output
// and exit codes) against 3 masters and a worker: apply the example, get it as a table, JSON,
// YAML and names, read a pod's log, scale, delete; and one clear sentence for each failure.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, ProcessCluster, VIEWER_TOKEN, freePort } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';
import { until } from './support/until.ts';

const BIN = fileURLToPath(new URL('../packages/cli/bin/flotilla.mjs', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));

function run(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

describe('flotilla get/apply/delete/logs/scale/version', { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  const cli = (...args: string[]) => run([...args, '--config', cluster.file]);

  before(async () => {
    cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, workers: 1 });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    await cluster.startAgent('w1');
  });
  after(async () => {
    await cluster?.stop();
  });

  test('apply the example, see it, read a log, scale it, delete it', async () => {
    const version = await cli('version');
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^Client Version: flotilla \d+\.\d+\.\d+\nServer Version: v\d/);

    const created = await cli('apply', '-f', EXAMPLES);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'deployment.apps/web created\nservice/web created\n');
    const again = await cli('apply', '-f', EXAMPLES);
    assert.equal(again.stdout, 'deployment.apps/web unchanged\nservice/web unchanged\n', 'applying the same files changes nothing');

    const pods = await until('3 pods Running', async () => {
      const json = await cli('get', 'pods', '-o', 'json');
      const items = JSON.parse(json.stdout).items as any[];
      return items.length === 3 && items.every((p) => p.status?.phase === 'Running') ? items : undefined;
    }, 60_000);
    const table = await cli('get', 'pods', '-o', 'wide');
    assert.ok(!table.stdout.includes('\u001b['), 'no colour when the output is not a terminal');
    assert.match(table.stdout.split('\n')[0]!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
    assert.equal(table.stdout.trim().split('\n').length, 4);
    for (const p of pods) assert.match(table.stdout, new RegExp(`^${p.metadata.name}\\s+\\d/1\\s+Running\\s+0\\s+\\S+\\s+127\\.0\\.2\\.1\\s+w1`, 'm'));
    const names = await cli('get', 'po', '-o', 'name');
    assert.deepEqual(names.stdout.trim().split('\n').sort(), pods.map((p) => `pod/${p.metadata.name}`).sort());
    const yaml = await cli('get', 'deploy', 'web', '-o', 'yaml');
    assert.match(yaml.stdout, /^apiVersion: apps\/v1\nkind: Deployment\n/);
    const many = await cli('get', 'deploy,svc', '-A');
    assert.match(many.stdout, /^NAMESPACE\s+NAME\s+READY/m);
    assert.match(many.stdout, /default\s+deployment\.apps\/web\s/);
    assert.match(many.stdout, /default\s+service\/web\s/);

    const log = await until('the log of a pod', async () => {
      const l = await cli('logs', pods[0].metadata.name);
      return l.code === 0 && /listening on/.test(l.stdout) ? l.stdout : undefined;
    }, 20_000);
    assert.match(log, /^listening on 127\.0\.2\.1:\d+$/m);

    const described = await cli('describe', 'pod', pods[0].metadata.name);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, new RegExp(`^Name:\\s+${pods[0].metadata.name}$`, 'm'));
    assert.match(described.stdout, /^Node:\s+w1$/m);
    assert.match(described.stdout, /^ {4}Ports:\s+8080→127\.0\.2\.1:\d+ \(http\)$/m);
    assert.match(described.stdout, /^Events:\n(.|\n)*Started/m);
    assert.match((await cli('describe', 'node', 'w1')).stdout, /^Pods:\n(\s+default\/web-.*\n){3}/m);
    assert.match((await cli('describe', 'svc', 'web')).stdout, /^Endpoints:\n(\s+127\.0\.2\.1:\d+ \(w1\)\n){3}/m);

    const status = await cli('status', '-o', 'json');
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assert.deepEqual(s.nodes.map((n: { name: string; ready: boolean }) => [n.name, n.ready]), [['w1', true]]);
    assert.match(s.verdict, /^healthy: m\d leads term \d+, 3\/3 masters up, 1\/1 nodes Ready$/);

    // A new revision, then back: rollout status waits for each, undo restores the first template.
    const statusTable = await cli('status'); // the verdict comes last
    assert.match(statusTable.stdout.trim().split('\n').at(-1)!, /^healthy: /);
    const patched = await run(['apply', '-f', '-', '--config', cluster.file], readFileSync(join(EXAMPLES, 'web.yaml'), 'utf8').replace('periodSeconds: 2', 'periodSeconds: 3'));
    assert.match(patched.stdout, /deployment\.apps\/web configured/);
    const done = await cli('rollout', 'status', 'deploy/web', '--timeout', '60');
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /deployment "web" successfully rolled out\n$/);
    const undo = await cli('rollout', 'undo', 'deploy/web');
    assert.equal(undo.stdout, 'deployment.apps/web rolled back to revision 1\n', undo.stderr);
    const template = JSON.parse((await cli('get', 'deploy', 'web', '-o', 'json')).stdout).spec.template;
    assert.equal(template.spec.containers[0].readinessProbe.periodSeconds, 2, 'the first revision is back');
    assert.equal((await cli('rollout', 'status', 'deploy/web', '--timeout', '60')).code, 0);

    const scaled = await cli('scale', 'deploy/web', '--replicas', '1');
    assert.equal(scaled.stdout, 'deployment.apps/web scaled\n');
    await until('1 pod left', async () => (await cli('get', 'pods', '-o', 'name')).stdout.trim().split('\n').filter(Boolean).length === 1, 30_000);

    const deleted = await cli('delete', '-f', join(EXAMPLES, 'web.yaml'));
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, 'deployment "web" deleted\nservice "web" deleted\n');
    const none = await until('no pods left', async () => {
      const g = await cli('get', 'pods');
      return g.stdout === '' ? g : undefined;
    }, 30_000);
    assert.equal(none.stderr, 'No resources found in default namespace.\n');
  });

  test('each failure is one sentence with a non-zero exit code', async () => {
    const bad = join(cluster.dir, 'bad.yaml');
    writeFileSync(bad, 'kind: [\n');
    const noName = join(cluster.dir, 'noname.yaml');
    writeFileSync(noName, 'apiVersion: v1\nkind: Pod\nmetadata: {}\n');
    const wrongToken = join(cluster.dir, 'wrong-token.yaml');
    writeFileSync(wrongToken, readFileSync(cluster.file, 'utf8').replace(/token: test-admin-token-0123456789/, 'token: not-the-right-token-0123'));
    const deadPort = await freePort('127.0.0.1');
    const nowhere = join(cluster.dir, 'nowhere.yaml');
    writeFileSync(nowhere, `cluster: nowhere\nsecret: nowhere-secret-0123456789\ninsecureHttp: true\ntokens:\n  - { name: admin, token: nowhere-admin-token-0123, role: admin }\nmasters:\n  - { name: m1, peer: "127.0.0.1:${deadPort}", client: "127.0.0.1:${deadPort + 1}", api: "127.0.0.1:${deadPort + 2}", data: nowhere }\n`);
    const cases: [string, Promise<{ code: number; stdout: string; stderr: string }>, RegExp][] = [
      ['unknown kind', cli('get', 'widgets'), /^flotilla: the server doesn't have a resource type "widgets" \(known: namespaces, nodes, pods/],
      ['bad YAML', cli('apply', '-f', bad), /^flotilla: .*bad\.yaml is not valid YAML: /],
      ['object without a name', cli('apply', '-f', noName), /^flotilla: .*noname\.yaml: every object needs apiVersion, kind and metadata\.name$/],
      ['missing file', cli('apply', '-f', join(cluster.dir, 'nope.yaml')), /^flotilla: cannot read .*nope\.yaml: ENOENT$/],
      ['not found', cli('delete', 'pod', 'ghost'), /^flotilla: pods "ghost" not found \(HTTP 404\)$/],
      ['viewer may not write', cli('apply', '-f', EXAMPLES, '--user', 'viewer'), /^flotilla: deployments is forbidden: User "viewer" cannot create .*\(HTTP 403\)$/],
      ['token refused', run(['get', 'pods', '--config', wrongToken]), /^flotilla: the cluster refused the token of user admin \(401 Unauthorized\): check "tokens" in .*wrong-token\.yaml$/],
      ['no master reachable', run(['get', 'pods', '--config', nowhere]), new RegExp(`^flotilla: no master is reachable \\(tried http://127\\.0\\.0\\.1:${deadPort + 2}: ECONNREFUSED\\); is the cluster running \\(npm start\\)\\?$`)],
      ['not scalable', cli('scale', 'svc/web', '--replicas', '2'), /^flotilla: services cannot be scaled \(only deployments and replicasets can\)$/],
    ];
    for (const [name, pending, message] of cases) {
      const r = await pending;
      assert.equal(r.code, 1, `${name}: exit code (${r.stderr})`);
      assert.match(r.stderr.trimEnd(), message, name);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
    }
    const usage = await cli('get');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /get needs a KIND/);
    const badOutput = await cli('get', 'pods', '-o', 'toml');
    assert.equal(badOutput.code, 2);
    assert.match(badOutput.stderr, /unknown output format "toml"/);
  });

  test('the dashboard files and the cluster endpoints: who may see and do what', async () => {
    const viewer = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), VIEWER_TOKEN, cluster.caCert());
    const admin = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    const anonymous = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), 'not-a-token', cluster.caCert());
    const page = await anonymous.call('GET', '/ui');
    assert.equal(page.status, 200, 'the page itself needs no token');
    assert.match(String(page.json), /<title>Flotilla<\/title>/);
    assert.equal((await anonymous.call('GET', '/ui/vendor/yaml/index.js')).status, 200);
    assert.equal((await anonymous.call('GET', '/ui/nope.js')).status, 404);
    assert.equal((await anonymous.call('GET', '/flotilla/v1/cluster')).status, 401);
    const status = await viewer.ok('GET', '/flotilla/v1/cluster');
    assert.deepEqual(status.masters.map((m: { name: string }) => m.name), ['m1', 'm2', 'm3']);
    assert.equal(status.masters.filter((m: { role: string }) => m.role === 'leader').length, 1);
    const refused = await viewer.call('POST', '/flotilla/v1/cluster/transfer', { to: 'm1' });
    assert.equal(refused.status, 403);
    assert.match(refused.json.message, /only admins can/);
    const unknown = await admin.call('POST', '/flotilla/v1/cluster/transfer', { to: 'm9' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.message, /cannot transfer leadership to m9: .*no master named m9/);
  });

  test('get -w prints a row for each change', async () => {
    const watcher = spawn(process.execPath, [BIN, 'get', 'pods', '-w', '--config', cluster.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    watcher.stdout.on('data', (c: Buffer) => (out += c.toString()));
    watcher.stderr.on('data', (c: Buffer) => (err += c.toString()));
    try {
      // The (empty) table is printed before the watch opens; give it a moment to open.
      await until('the first listing', () => err.includes('No resources found') || out !== '', 15_000);
      await new Promise((r) => setTimeout(r, 1000));
      const admin = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
      await admin.ok('POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'watched' }, spec: { containers: [{ name: 'c', command: ['sleep', '600'], env: [{ name: 'FLOTILLA_TEST_CLUSTER', value: cluster.dir }] }] } }, 201);
      await until('a row for the new pod, then one showing it Running', () => /^watched\s+0\/1\s+\S+/m.test(out) && /^watched\s+1\/1\s+Running/m.test(out), 30_000);
      await admin.ok('DELETE', '/api/v1/namespaces/default/pods/watched', { gracePeriodSeconds: 0 });
    } finally {
      if (watcher.pid !== undefined && watcher.exitCode === null) process.kill(watcher.pid, 'SIGKILL');
    }
  });

  test('apply reads stdin', async () => {
    const manifest = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-stdin\n';
    const r = await run(['apply', '-f', '-', '--config', cluster.file], manifest);
    assert.equal(r.stdout, 'namespace/from-stdin created\n', r.stderr);
    assert.match((await cli('get', 'ns', 'from-stdin')).stdout, /^from-stdin\s+Active/m);
  });
});

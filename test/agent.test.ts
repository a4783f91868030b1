// Worker agents as real processes: 3 masters and 2 agents on loopback, pods that are real
// processes (a small HTTP server, test/fixtures/http-pod.mjs), the Service proxy on each
// node's address, and the failures the issue names: a pod's process killed, the leader master
// SIGKILLed, an agent SIGKILLed (and restarted), the Deployment deleted. Pod processes are
// found in the process table by the cluster's directory, which every pod gets as an argument.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, ProcessCluster, freePort } from './support/masters.ts';
import { HttpApi } from './support/http-api.ts';
import { until } from './support/until.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/http-pod.mjs', import.meta.url));
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const PODS = '/api/v1/namespaces/default/pods';

/** GET http://host:port/path → the JSON answer (or the text). */
function get(host: string, port: number, path = '/'): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, timeout: 3000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve(JSON.parse(text));
        } catch {
          resolve(text);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${host}:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function isReady(pod: any): boolean {
  return pod.status?.phase === 'Running' && pod.metadata.deletionTimestamp === undefined && (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
}

describe('worker agents: pods as processes, the service proxy, failures', { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  let api: HttpApi;
  let servicePort: number;
  const address = (node: string): string => cluster.workers.find((w) => w.name === node)!.address;

  const pods = async (app: string): Promise<any[]> => (await api.ok('GET', `${PODS}?labelSelector=app%3D${app}`)).items;
  const readyPods = async (app: string, n: number, timeoutMs = 30_000): Promise<any[]> =>
    until(`${n} pods of ${app} are Running and Ready`, async () => {
      const ready = (await pods(app)).filter(isReady);
      return ready.length === n ? ready : undefined;
    }, timeoutMs);
  const hostPort = (pod: any): number => pod.status.portMappings.find((m: any) => m.name === 'http').hostPort;

  function deployment(name: string, replicas: number): object {
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'default' },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            terminationGracePeriodSeconds: 5,
            containers: [
              {
                name: 'server',
                image: 'flotilla/http-pod',
                command: [process.execPath, FIXTURE, cluster.dir],
                ports: [{ name: 'http', containerPort: 8080 }],
                env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
                readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
                resources: { requests: { cpu: '100m', memory: '32Mi' } },
              },
            ],
          },
        },
      },
    };
  }

  before(async () => {
    cluster = await ProcessCluster.create({ masters: 3, api: true, proxied: false, workers: 2, nodeLifecycle: { gracePeriodSeconds: 3, evictionSeconds: 2 } });
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    await Promise.all(cluster.names.map((n) => cluster.apiReady(n)));
    api = new HttpApi(cluster.names.map((n) => cluster.apiUrl(n)), ADMIN_TOKEN, cluster.caCert());
    await Promise.all(['w1', 'w2'].map((w) => cluster.startAgent(w)));
    servicePort = await freePort('127.0.2.1');
  });

  after(async () => {
    await cluster?.stop();
  });

  test('agents register their nodes with real capacity, labels and address, and keep them Ready', async () => {
    const nodes = await until('both nodes are Ready', async () => {
      const list = (await api.ok('GET', '/api/v1/nodes')).items as any[];
      return list.length === 2 && list.every((n) => n.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True')) ? list : undefined;
    });
    for (const n of nodes) {
      assert.equal(n.metadata.labels['flotilla.io/test'], 'yes');
      assert.equal(n.metadata.labels['kubernetes.io/hostname'], n.metadata.name);
      assert.equal(n.status.addresses.find((a: any) => a.type === 'InternalIP').address, address(n.metadata.name));
      assert.ok(Number(n.status.capacity.cpu) >= 1);
      assert.ok(['true', 'false'].includes(n.metadata.annotations['flotilla.io/limits-enforced']));
      const lease = await api.ok('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n.metadata.name}`);
      const renewed = lease.spec.renewTime;
      await until('the lease is renewed', async () => (await api.ok('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n.metadata.name}`)).spec.renewTime !== renewed, 5000);
    }
  });

  test('a Deployment of 4 runs on both nodes; the Service answers through either proxy, by a local replica', async () => {
    await api.ok('POST', DEPLOYMENTS, deployment('web', 4), [201]);
    await api.ok('POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: servicePort, targetPort: 'http' }] } }, [201]);
    const running = await readyPods('web', 4);
    const byNode = new Map<string, any[]>();
    for (const p of running) byNode.set(p.spec.nodeName, [...(byNode.get(p.spec.nodeName) ?? []), p]);
    assert.deepEqual([...byNode.keys()].sort(), ['w1', 'w2'], 'pods run on both nodes');
    // Each pod answers at its address and assigned port, and knows its node (from fieldRef).
    for (const p of running) {
      assert.equal(p.status.podIP, address(p.spec.nodeName));
      const me = await get(p.status.podIP, hostPort(p));
      assert.equal(me.pod, p.metadata.name);
      assert.equal(me.node, p.spec.nodeName);
    }
    const ports = running.filter((p) => p.spec.nodeName === 'w1').map(hostPort);
    assert.equal(new Set(ports).size, ports.length, 'two pods of one app on one node got different ports');
    // The Endpoints carry the assigned ports.
    await until('the endpoints list all 4 pods at their assigned ports', async () => {
      const ep = await api.ok('GET', '/api/v1/namespaces/default/endpoints/web');
      const seen = (ep.subsets ?? []).flatMap((s: any) => (s.addresses ?? []).map((a: any) => `${a.ip}:${s.ports[0].port}`)).sort();
      return JSON.stringify(seen) === JSON.stringify(running.map((p) => `${p.status.podIP}:${hostPort(p)}`).sort());
    });
    // Through each node's proxy: answered by that node's own replicas, spread over them.
    for (const [node, local] of byNode) {
      const answers = await until(`${node}'s proxy forwards to its local pods`, async () => {
        const out: any[] = [];
        for (let i = 0; i < 4 * local.length; i++) out.push(await get(address(node), servicePort));
        return out;
      });
      assert.ok(answers.every((a) => a.node === node), `every request entering ${node} was served on ${node}: ${JSON.stringify(answers)}`);
      assert.deepEqual(new Set(answers.map((a) => a.pod)), new Set(local.map((p) => p.metadata.name)), `requests entering ${node} were spread over its local replicas`);
    }
  });

  test('logs of a pod are served through any master', async () => {
    const [pod] = (await pods('web')).filter(isReady);
    for (const m of cluster.names) {
      const text = await until(`the log through ${m}`, async () => {
        const a = await new HttpApi([cluster.apiUrl(m)], ADMIN_TOKEN, cluster.caCert()).call('GET', `${PODS}/${pod.metadata.name}/log`);
        return a.status === 200 ? String(a.json) : undefined;
      }, 10_000);
      assert.match(text, /listening on 127\.0\.2\.\d+:\d+/);
    }
  });

  test('a killed pod process is restarted with a growing restartCount; a crashing one backs off', async () => {
    const [pod] = (await pods('web')).filter(isReady);
    const { pid } = await get(pod.status.podIP, hostPort(pod));
    process.kill(pid, 'SIGKILL');
    const restarted = await until('the pod is restarted', async () => {
      const p = await api.ok('GET', `${PODS}/${pod.metadata.name}`);
      return p.status.containerStatuses[0].restartCount === 1 && isReady(p) ? p : undefined;
    });
    assert.equal(restarted.status.containerStatuses[0].lastState.terminated.exitCode, 137);
    assert.equal(restarted.metadata.uid, pod.metadata.uid, 'the same pod, restarted in place');
    const again = await get(restarted.status.podIP, hostPort(restarted));
    assert.notEqual(again.pid, pid);

    // A container that exits at once: CrashLoopBackOff, and the delays between restarts double.
    await api.ok('POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'crasher' }, spec: { containers: [{ name: 'c', image: 'none', command: ['/bin/sh', '-c', 'echo boom; exit 3', cluster.dir] }] } }, [201]);
    const backoffs = new Set<string>();
    await until('the crashing pod restarted 3 times', async () => {
      const p = await api.ok('GET', `${PODS}/crasher`);
      const s = p.status.containerStatuses?.[0];
      if (s?.state?.waiting?.reason === 'CrashLoopBackOff') backoffs.add(/back-off (\d+s)/.exec(s.state.waiting.message)?.[1] ?? '?');
      return s?.restartCount >= 3;
    }, 30_000);
    // The delay doubles: 1 s before the first restart, 2 s before the second, …
    assert.ok(backoffs.has('1s') && backoffs.has('2s'), `CrashLoopBackOff was shown with doubling delays (saw ${[...backoffs].join(', ')})`);
    const events = (await api.ok('GET', '/api/v1/namespaces/default/events')).items as any[];
    assert.ok(events.some((e) => e.involvedObject.name === 'crasher' && e.reason === 'BackOff'), 'a BackOff event was recorded');
    const p = await api.ok('GET', `${PODS}/crasher`);
    assert.equal(p.status.containerStatuses[0].lastState.terminated.exitCode, 3);
    await api.ok('DELETE', `${PODS}/crasher`);
  });

  test('SIGKILL of the leader master: no pod restarts, agents reconnect, a scale-up works', async () => {
    const before = (await pods('web')).filter(isReady);
    const pids = new Map<string, number>();
    for (const p of before) pids.set(p.metadata.name, (await get(p.status.podIP, hostPort(p))).pid);
    const leader = await cluster.leader();
    await cluster.kill(leader);
    await cluster.leader();
    await api.ok('PATCH', `${DEPLOYMENTS}/web`, { spec: { replicas: 6 } }, 200, 'application/merge-patch+json');
    const after = await readyPods('web', 6, 40_000);
    for (const p of after.filter((x) => pids.has(x.metadata.name))) {
      assert.equal((await get(p.status.podIP, hostPort(p))).pid, pids.get(p.metadata.name), `${p.metadata.name} kept its process`);
      assert.equal(p.status.containerStatuses[0].restartCount, before.find((b) => b.metadata.name === p.metadata.name).status.containerStatuses[0].restartCount);
    }
    assert.equal(after.filter((x) => pids.has(x.metadata.name)).length, 4);
    await cluster.start(leader);
  });

  test('all masters down: the pods keep running, and the agents come back when the masters do', async () => {
    const before = (await pods('web')).filter(isReady);
    const pids = new Map<string, number>();
    for (const p of before) pids.set(p.metadata.name, (await get(p.status.podIP, hostPort(p))).pid);
    await Promise.all(cluster.names.map((n) => cluster.kill(n)));
    await new Promise((r) => setTimeout(r, 3000));
    // No master at all: every pod still answers, from the same process.
    for (const p of before) assert.equal((await get(p.status.podIP, hostPort(p))).pid, pids.get(p.metadata.name));
    await Promise.all(cluster.names.map((n) => cluster.start(n)));
    await cluster.leader();
    const renewed = new Map<string, string>();
    for (const w of ['w1', 'w2']) renewed.set(w, (await api.ok('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${w}`)).spec.renewTime);
    await until('both agents renew their leases again', async () => {
      for (const w of ['w1', 'w2']) if ((await api.ok('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${w}`)).spec.renewTime === renewed.get(w)) return false;
      return true;
    }, 20_000);
    const after = (await pods('web')).filter(isReady);
    assert.equal(after.length, before.length);
    for (const p of after) {
      assert.equal(p.status.containerStatuses[0].restartCount, before.find((b) => b.metadata.name === p.metadata.name).status.containerStatuses[0].restartCount, `${p.metadata.name} was not restarted`);
      assert.equal((await get(p.status.podIP, hostPort(p))).pid, pids.get(p.metadata.name));
    }
  });

  test('an agent SIGKILLed and restarted at once finds its pods again, with no duplicates', async () => {
    const mine = (await pods('web')).filter((p) => p.spec.nodeName === 'w1' && isReady(p));
    const processesBefore = cluster.podProcesses().length;
    const pids = new Map<string, number>();
    for (const p of mine) pids.set(p.metadata.name, (await get(p.status.podIP, hostPort(p))).pid);
    await cluster.killAgent('w1', 'SIGKILL');
    await cluster.startAgent('w1');
    // The new agent probes its pods afresh (readiness every second): after a few seconds
    // every pod must be ready, at the same port, served by the same process.
    await new Promise((r) => setTimeout(r, 3000));
    await until('w1 reports its pods ready again', async () => (await pods('web')).filter((p) => p.spec.nodeName === 'w1' && isReady(p)).length === mine.length, 20_000);
    const now = (await pods('web')).filter((p) => p.spec.nodeName === 'w1');
    for (const p of mine) {
      const same = now.find((x) => x.metadata.name === p.metadata.name);
      assert.deepEqual(same.status.portMappings, p.status.portMappings, `${p.metadata.name} kept its port`);
      assert.equal(same.status.containerStatuses[0].restartCount, p.status.containerStatuses[0].restartCount, `${p.metadata.name} was not restarted`);
      assert.equal((await get(p.status.podIP, hostPort(p))).pid, pids.get(p.metadata.name), `${p.metadata.name} kept its process across the agent restart`);
    }
    assert.equal(cluster.podProcesses().length, processesBefore, 'no duplicate processes');
  });

  test('SIGKILL of an agent: its pods are replaced on the other node; back again, its stale pods are cleaned up', async (t) => {
    const onW2 = (await pods('web')).filter((p) => p.spec.nodeName === 'w2' && isReady(p));
    assert.ok(onW2.length > 0);
    const stalePids: number[] = [];
    for (const p of onW2) stalePids.push((await get(p.status.podIP, hostPort(p))).pid);
    await cluster.killAgent('w2', 'SIGKILL');
    const killedAt = Date.now();
    await until('6 ready pods all on w1', async () => {
      const all = await pods('web');
      const ready = all.filter(isReady);
      if (ready.length === 6 && ready.every((p) => p.spec.nodeName === 'w1')) return true;
      throw new Error(all.map(describePod).join('; '));
    }, 30_000);
    const took = Date.now() - killedAt;
    t.diagnostic(`the pods of the lost node were replaced and ready ${took} ms after its agent was killed`);
    assert.ok(took < 15_000, `replaced within ~10 s (took ${took} ms)`);
    const node = await api.ok('GET', '/api/v1/nodes/w2');
    assert.equal(node.status.conditions.find((c: any) => c.type === 'Ready').status, 'Unknown');
    // The old processes still run on the unplugged node (its agent is gone)…
    for (const pid of stalePids) assert.ok(alive(pid));
    await cluster.startAgent('w2');
    // …until it comes back: then they are stopped and their pod objects removed.
    await until('the stale processes are gone', () => stalePids.every((pid) => !alive(pid)), 20_000);
    await until('the stale pod objects are gone', async () => {
      const names = new Set((await pods('web')).map((p) => p.metadata.name));
      return onW2.every((p) => !names.has(p.metadata.name));
    }, 20_000);
    await until('w2 is Ready again', async () => (await api.ok('GET', '/api/v1/nodes/w2')).status.conditions.find((c: any) => c.type === 'Ready').status === 'True', 15_000);
  });

  test('deleting the Deployment stops every process', async () => {
    assert.ok(cluster.podProcesses().length >= 6);
    await api.ok('DELETE', `${DEPLOYMENTS}/web`, { propagationPolicy: 'Foreground' });
    await until('no pod of web is left', async () => (await pods('web')).length === 0, 30_000);
    await until('no pod process is left in the process table', () => cluster.podProcesses().length === 0, 15_000);
  });
});

/** A pod in one line, for failure messages. */
function describePod(p: any): string {
  const c = p.status?.containerStatuses?.[0];
  return `${p.metadata.name} on ${p.spec.nodeName ?? '-'} ${p.status?.phase}${p.metadata.deletionTimestamp === undefined ? '' : ' (terminating)'} ready=${isReady(p)} ${JSON.stringify(c?.state ?? {})}`;
}

/** Whether a process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

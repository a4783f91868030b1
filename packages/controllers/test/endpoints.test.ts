// The Endpoints controller on the real API: Endpoints follow pod IPs and readiness, pod
// deletion, selector changes and the Service's deletion; named target ports are resolved per
// pod; ports map to the host ports a pod reports in status.portMappings; a Service without
// selector is left alone; nothing is written when nothing changed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, InformerFactory, type Endpoints, type Pod, type PortMapping, type Service } from '@flotilla/api';
import { startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';
import { EndpointsController } from '../src/endpoints.ts';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const service = (name: string, selector: Record<string, string> | undefined): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels: { tier: 'front' } },
  spec: {
    ...(selector === undefined ? {} : { selector }),
    ports: [
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'admin', port: 81, targetPort: 9000 },
    ],
  },
});

const pod = (name: string, labels: Record<string, string>, webPort: number | undefined): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels },
  spec: { nodeName: 'w1', containers: [{ name: 'c', image: 'process', command: ['sleep', '100'], ...(webPort === undefined ? {} : { ports: [{ name: 'web', containerPort: webPort }] }) }] },
});

describe('endpoints controller', () => {
  let api: TestApi;
  let ctrl: EndpointsController;
  let informers: InformerFactory;
  before(async () => {
    api = await startTestApi();
    informers = new InformerFactory(api.client);
    ctrl = new EndpointsController({ client: api.client, informers, logger: silentLogger, now: Date.now });
    await informers.start();
    ctrl.start();
  });
  after(async () => {
    ctrl.stop();
    informers.stop();
    await api.stop();
  });

  /** What the agent reports: the pod's IP and its readiness. */
  async function setStatus(name: string, podIP: string | undefined, ready: boolean, portMappings?: PortMapping[]): Promise<void> {
    const p = await api.client.get<Pod>('pods', 'default', name);
    const status: Pod['status'] = { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] };
    if (podIP !== undefined) status.podIP = podIP;
    if (portMappings !== undefined) status.portMappings = portMappings;
    await api.client.update('pods', { ...p, status }, 'status');
  }

  async function endpoints(name: string): Promise<Endpoints | undefined> {
    try {
      return await api.client.get<Endpoints>('endpoints', 'default', name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /** A compact view: per subset, "ports | ready names | not-ready names", sorted. */
  async function view(name: string): Promise<string[] | undefined> {
    const e = await endpoints(name);
    return e?.subsets?.map((s) =>
      [
        (s.ports ?? []).map((p) => `${p.name}:${p.port}`).join(','),
        (s.addresses ?? []).map((a) => a.targetRef?.name).join(','),
        (s.notReadyAddresses ?? []).map((a) => a.targetRef?.name).join(','),
      ].join(' | '),
    ).sort();
  }

  async function untilView(name: string, want: string[] | undefined): Promise<void> {
    let last: string[] | undefined;
    await until(`endpoints ${name} is ${JSON.stringify(want)}`, async () => {
      last = await view(name);
      return JSON.stringify(last) === JSON.stringify(want);
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(last)}`);
    });
  }

  test('endpoints follow pod IPs, readiness, deletion, selector changes and the service', async () => {
    await api.client.create('pods', pod('a', { app: 'web' }, 8080));
    await api.client.create('pods', pod('b', { app: 'web' }, 8081));
    await api.client.create('pods', pod('no-ip', { app: 'web' }, 8080));
    await api.client.create('pods', pod('no-web-port', { app: 'web' }, undefined));
    await api.client.create('pods', pod('other', { app: 'other' }, 8080));
    await setStatus('a', '10.0.0.1', true);
    await setStatus('b', '10.0.0.2', false);
    await setStatus('no-ip', undefined, true);
    await setStatus('no-web-port', '10.0.0.4', true);
    await setStatus('other', '10.0.0.5', true);
    await api.client.create('services', service('web', { app: 'web' }));

    // Named targetPort "web" resolves per pod (8080, 8081); a pod without it serves only admin.
    await untilView('web', ['admin:9000 | no-web-port | ', 'http:8080,admin:9000 | a | ', 'http:8081,admin:9000 |  | b']);
    assert.deepEqual((await endpoints('web'))!.subsets!.map((x) => x.ports!.map((p) => p.port)), [[8080, 9000], [8081, 9000], [9000]], 'subsets in a stable order');
    const e = (await endpoints('web'))!;
    assert.deepEqual(e.metadata.labels, { tier: 'front' }, 'labels copied from the service');
    const a = e.subsets!.flatMap((s) => s.addresses ?? []).find((x) => x.targetRef?.name === 'a')!;
    const podA = await api.client.get<Pod>('pods', 'default', 'a');
    assert.deepEqual(a, { ip: '10.0.0.1', nodeName: 'w1', targetRef: { kind: 'Pod', name: 'a', namespace: 'default', uid: podA.metadata.uid } });

    await setStatus('b', '10.0.0.2', true);
    await untilView('web', ['admin:9000 | no-web-port | ', 'http:8080,admin:9000 | a | ', 'http:8081,admin:9000 | b | ']);

    await setStatus('no-ip', '10.0.0.3', false);
    await untilView('web', ['admin:9000 | no-web-port | ', 'http:8080,admin:9000 | a | no-ip', 'http:8081,admin:9000 | b | ']);

    // A pod being deleted (the agent stops it within its grace period) is no longer ready.
    await api.client.delete('pods', 'default', 'a');
    assert.ok((await api.client.get<Pod>('pods', 'default', 'a')).metadata.deletionTimestamp !== undefined);
    await untilView('web', ['admin:9000 | no-web-port | ', 'http:8080,admin:9000 |  | a,no-ip', 'http:8081,admin:9000 | b | ']);
    await api.client.delete('pods', 'default', 'a', { gracePeriodSeconds: 0 });
    await untilView('web', ['admin:9000 | no-web-port | ', 'http:8080,admin:9000 |  | no-ip', 'http:8081,admin:9000 | b | ']);

    const svc = await api.client.get<Service>('services', 'default', 'web');
    await api.client.update('services', { ...svc, spec: { ...svc.spec, selector: { app: 'other' } } });
    await untilView('web', ['http:8080,admin:9000 | other | ']);

    await api.client.delete('services', 'default', 'web');
    await until('the endpoints are deleted with the service', async () => (await endpoints('web')) === undefined);
  });

  test('nothing is written when nothing changed; a service without selector is left alone', async () => {
    await api.client.create('pods', pod('q', { app: 'quiet' }, 8080));
    await setStatus('q', '10.0.1.1', true);
    await api.client.create('services', service('quiet', { app: 'quiet' }));
    await untilView('quiet', ['http:8080,admin:9000 | q | ']);
    const writes: string[] = [];
    const stopWatch = await api.client.watch<Endpoints>('endpoints', 'default', (await endpoints('quiet'))!.metadata.resourceVersion!, {
      event: (type, obj) => {
        if (type !== 'BOOKMARK' && obj.metadata.name === 'quiet') writes.push(type);
      },
      end: () => {},
    });
    // Changes that do not change the endpoints: labels the selector ignores, annotations.
    for (let i = 0; i < 5; i++) {
      const q = await api.client.get<Pod>('pods', 'default', 'q');
      await api.client.update('pods', { ...q, metadata: { ...q.metadata, annotations: { n: String(i) } } });
    }
    await setStatus('q', '10.0.1.1', false);
    await untilView('quiet', ['http:8080,admin:9000 |  | q']);
    stopWatch();
    assert.deepEqual(writes, ['MODIFIED'], 'one write: the readiness change, none for the annotations');

    // Endpoints a user manages for a Service without selector stay as they are.
    const manual: Endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'manual', namespace: 'default' }, subsets: [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ name: 'http', port: 80 }] }] };
    await api.client.create('endpoints', manual);
    await api.client.create('services', service('manual', undefined));
    await api.client.create('pods', pod('marker', { app: 'marker' }, 8080));
    await setStatus('marker', '10.0.1.2', true);
    await api.client.create('services', service('marker', { app: 'marker' }));
    await untilView('marker', ['http:8080,admin:9000 | marker | ']);
    assert.deepEqual((await endpoints('manual'))?.subsets, manual.subsets, 'left alone');

    // Someone deleting a selector's Endpoints: they come back.
    await api.client.delete('endpoints', 'default', 'marker');
    await untilView('marker', ['http:8080,admin:9000 | marker | ']);
  });

  test('ports map to the host ports the agent assigned (status.portMappings); pods without mappings keep containerPort', async () => {
    // Both of the Service's ports declared: "web" (named targetPort) and 9000 (numeric).
    const mapped = (name: string): Pod => {
      const p = pod(name, { app: 'mapped' }, 8080);
      p.spec.containers[0]!.ports!.push({ containerPort: 9000 });
      return p;
    };
    for (const name of ['m1', 'm2', 'plain']) await api.client.create('pods', mapped(name));
    // A UDP mapping of 9000 comes first: the TCP port must not take it.
    await setStatus('m1', '127.0.0.2', true, [
      { containerName: 'c', containerPort: 9000, protocol: 'UDP', hostPort: 39999 },
      { containerName: 'c', name: 'web', containerPort: 8080, protocol: 'TCP', hostPort: 31001 },
      { containerName: 'c', containerPort: 9000, protocol: 'TCP', hostPort: 31002 },
    ]);
    // The same app on the same node: other host ports, so another subset.
    await setStatus('m2', '127.0.0.2', true, [
      { containerName: 'c', name: 'web', containerPort: 8080, hostPort: 31003 },
      { containerName: 'c', containerPort: 9000, hostPort: 31004 },
    ]);
    await setStatus('plain', '10.0.2.1', true);
    await api.client.create('services', service('mapped', { app: 'mapped' }));
    await untilView('mapped', ['http:31001,admin:31002 | m1 | ', 'http:31003,admin:31004 | m2 | ', 'http:8080,admin:9000 | plain | ']);

    // A new assignment (the agent restarted the pod on other ports) moves the endpoint.
    await setStatus('m2', '127.0.0.2', true, [
      { containerName: 'c', name: 'web', containerPort: 8080, hostPort: 31001 },
      { containerName: 'c', containerPort: 9000, hostPort: 31002 },
    ]);
    await untilView('mapped', ['http:31001,admin:31002 | m1,m2 | ', 'http:8080,admin:9000 | plain | ']);
  });
});

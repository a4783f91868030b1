// The kubelet's pure rules: pod phase (Kubernetes' getPhase), the pod status it reports, the
// container environment (fields of the pod, $(VAR), assigned ports, Services), and the port
// allocator (distinct ports, kept across restarts, given back).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import type { ContainerState, Pod } from '@flotilla/api';
import { containerEnv, expand, podField, podPhase, podStatus, PortAllocator, portEnvName } from '@flotilla/agent';

const running: ContainerState = { running: { startedAt: '2026-01-01T00:00:00Z' } };
const exited = (exitCode: number): ContainerState => ({ terminated: { exitCode } });
const view = (state: ContainerState, lastState?: ContainerState) => ({ name: 'c', image: undefined, id: undefined, state, lastState, restartCount: 0, ready: state.running !== undefined, started: true });

test('pod phase follows Kubernetes getPhase', () => {
  assert.equal(podPhase('Always', [view({ waiting: { reason: 'ContainerCreating' } })]), 'Pending');
  assert.equal(podPhase('Always', [view(running)]), 'Running');
  assert.equal(podPhase('Always', [view(exited(0))]), 'Running', 'Always restarts: still running');
  assert.equal(podPhase('Never', [view(exited(0))]), 'Succeeded');
  assert.equal(podPhase('Never', [view(exited(1))]), 'Failed');
  assert.equal(podPhase('OnFailure', [view(exited(1))]), 'Running', 'OnFailure restarts a failed container');
  assert.equal(podPhase('OnFailure', [view(exited(0))]), 'Succeeded');
  assert.equal(podPhase('Never', [view(exited(0)), view(running)]), 'Running');
  assert.equal(podPhase('Always', [view({ waiting: { reason: 'CrashLoopBackOff' } }, exited(1))]), 'Running', 'a crash-looping container has run: Running');
  assert.equal(podPhase('Always', [view(running), view({ waiting: { reason: 'ImageNotRunnable' } })]), 'Pending');
});

function pod(overrides: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop', uid: 'u-1', labels: { app: 'web', tier: 'front' }, annotations: { note: 'hi' }, resourceVersion: '5' },
    spec: { nodeName: 'w1', containers: [{ name: 'main', command: ['x'], ports: [{ name: 'http', containerPort: 8080 }, { name: 'admin-port', containerPort: 9090 }] }], ...overrides },
    status: { phase: 'Pending', startTime: '2026-01-01T00:00:00Z' },
  };
}

test('pod status: ready only when every container is, conditions keep their transition times, ports reported', () => {
  const p = pod();
  const ports = [{ containerName: 'main', name: 'http', containerPort: 8080, protocol: 'TCP' as const, hostPort: 20001 }];
  const notReady = podStatus({ pod: p, address: '127.0.0.2', containers: [{ ...view(running), ready: false }], ports, startTime: 'x', now: Date.parse('2026-01-01T00:00:10Z') });
  assert.equal(notReady.phase, 'Running');
  assert.equal(notReady.conditions!.find((c) => c.type === 'Ready')!.status, 'False');
  assert.match(notReady.conditions!.find((c) => c.type === 'Ready')!.message!, /unready status: \[c\]/);
  assert.equal(notReady.podIP, '127.0.0.2');
  assert.equal(notReady.startTime, '2026-01-01T00:00:00Z', 'startTime kept from the pod');
  assert.deepEqual(notReady.portMappings, ports);
  const ready = podStatus({ pod: { ...p, status: notReady }, address: '127.0.0.2', containers: [view(running)], ports, startTime: 'x', now: Date.parse('2026-01-01T00:00:20Z') });
  assert.equal(ready.conditions!.find((c) => c.type === 'Ready')!.status, 'True');
  assert.equal(ready.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, '2026-01-01T00:00:20Z');
  assert.equal(ready.conditions!.find((c) => c.type === 'PodScheduled')!.lastTransitionTime, '2026-01-01T00:00:10Z', 'unchanged conditions keep their time');
});

test('environment: pod fields, assigned ports, Services, $(VAR) expansion', () => {
  const p = pod();
  p.spec.containers[0]!.env = [
    { name: 'MY_NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
    { name: 'URL', value: 'http://$(MY_IP):$(PORT)/$(NOPE)' },
    { name: 'LITERAL', value: '$$(PORT)' },
  ];
  p.status!.podIP = '127.0.0.2';
  const env = containerEnv({
    pod: p,
    container: p.spec.containers[0]!,
    address: '127.0.0.2',
    ports: [
      { containerName: 'main', name: 'http', containerPort: 8080, hostPort: 20001 },
      { containerName: 'main', name: 'admin-port', containerPort: 9090, hostPort: 20002 },
      { containerName: 'other', name: 'x', containerPort: 1, hostPort: 20003 },
    ],
    services: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'my-db', namespace: 'shop' }, spec: { ports: [{ name: 'sql', port: 5432 }] } }],
    base: { PATH: '/usr/bin', HOME: '/root', SECRET: 'not passed on' },
  });
  assert.equal(env['PORT'], '20001', 'PORT is the first declared port, as assigned');
  assert.equal(env['PORT_HTTP'], '20001');
  assert.equal(env['PORT_ADMIN_PORT'], '20002');
  assert.equal(env['PORT_X'], undefined, "another container's ports are not this one's");
  assert.equal(env['POD_IP'], '127.0.0.2');
  assert.equal(env['MY_NODE'], 'w1');
  assert.equal(env['TIER'], 'front');
  assert.equal(env['URL'], 'http://127.0.0.2:20001/$(NOPE)');
  assert.equal(env['LITERAL'], '$(PORT)');
  assert.equal(env['MY_DB_SERVICE_HOST'], '127.0.0.2', 'a Service is reached through this node');
  assert.equal(env['MY_DB_SERVICE_PORT_SQL'], '5432');
  assert.equal(env['HOSTNAME'], 'web-1');
  assert.equal(env['SECRET'], undefined, "the agent's own environment is not handed to pods");
  assert.equal(podField(p, 'metadata.annotations[\'missing\']'), '');
  assert.equal(podField(p, 'spec.bogus'), undefined);
  // A prototype's member is not a label (issue 12): it once gave "function Object() { … }".
  assert.equal(podField(p, "metadata.labels['constructor']"), '');
  assert.equal(podField(p, "metadata.annotations['toString']"), '');
  assert.equal(expand('$(A)$(A)', { A: 'x' }), 'xx');
  assert.equal(portEnvName('web.http-2'), 'PORT_WEB_HTTP_2');
});

test('ports: distinct per pod, busy ones skipped, kept for a pod that had them, given back', async () => {
  const address = '127.0.3.1';
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(25001, address, r));
  try {
    const ports = new PortAllocator(address, { from: 25000, to: 25004 });
    const a = pod();
    a.metadata.uid = 'a';
    const b = pod();
    b.metadata.uid = 'b';
    const pa = await ports.assign(a);
    const pb = await ports.assign(b);
    const all = [...pa, ...pb].map((m) => m.hostPort);
    assert.equal(new Set(all).size, 4, 'no port given twice');
    assert.ok(!all.includes(25001), 'a port in use on the address is skipped');
    // Pod a again (e.g. after an agent restart), with its ports in its status: it keeps them.
    a.status!.portMappings = pa;
    assert.deepEqual(await ports.assign(a), pa);
    // The range is full now; freeing b makes room.
    const c = pod();
    c.metadata.uid = 'c';
    await assert.rejects(ports.assign(c), /no free port left in 25000-25004 on 127\.0\.3\.1/);
    ports.release('b');
    assert.equal((await ports.assign(c)).length, 2);
  } finally {
    busy.close();
  }
});

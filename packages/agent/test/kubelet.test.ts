// The kubelet's decisions on a real API (startTestApi: a real store and API server) with a
// fake container runtime that the test drives (containers "exit" when the test says so):
// restart policies and the phases they lead to, crash-loop backoff, a start that fails and is
// retried, deletion (containers stopped, then the pod object removed), and a pod deleted and
// created again under the same name while the watch was down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiClient, Pod } from '@flotilla/api';
import { startTestApi } from '@flotilla/api/testing';
import { Kubelet, PortAllocator, RuntimeError, type ContainerConfig, type ContainerInfo, type ContainerRuntime, type LogOptions, type LogSink } from '@flotilla/agent';
import { silentLogger } from '@flotilla/wire';
import { cleanups, until } from './helpers.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A container runtime in memory: nothing runs; the test ends containers with exit(). */
class FakeRuntime implements ContainerRuntime {
  readonly name = 'fake';
  readonly limits = { enforced: false, note: 'fake runtime' };
  readonly containers = new Map<string, Mutable<ContainerInfo>>();
  private readonly listeners: ((info: ContainerInfo) => void)[] = [];
  /** Starts of a container name that fail (RuntimeError), counted down. */
  failStarts = new Map<string, number>();

  async recover(): Promise<ContainerInfo[]> {
    return [];
  }
  async create(config: ContainerConfig): Promise<ContainerInfo> {
    const id = `${config.podUid}_${config.containerName}_${config.attempt}`;
    const info: Mutable<ContainerInfo> = { id, podUid: config.podUid, podNamespace: config.podNamespace, podName: config.podName, containerName: config.containerName, attempt: config.attempt, state: 'created', createdAt: new Date() };
    this.containers.set(id, info);
    return { ...info };
  }
  async start(id: string): Promise<ContainerInfo> {
    const c = this.containers.get(id)!;
    const failing = this.failStarts.get(c.containerName) ?? 0;
    if (failing > 0) {
      this.failStarts.set(c.containerName, failing - 1);
      Object.assign(c, { state: 'exited', exitCode: 128, reason: 'StartError', finishedAt: new Date() });
      throw new RuntimeError('RunContainerError', 'the test says no');
    }
    Object.assign(c, { state: 'running', pid: 1000 + this.containers.size, startedAt: new Date() });
    return { ...c };
  }
  async stop(id: string): Promise<ContainerInfo> {
    this.exit(id, 143, 'SIGTERM');
    return { ...this.containers.get(id)! };
  }
  async remove(id: string): Promise<void> {
    this.containers.delete(id);
  }
  list(): ContainerInfo[] {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }
  get(id: string): ContainerInfo | undefined {
    const c = this.containers.get(id);
    return c === undefined ? undefined : { ...c };
  }
  onExit(listener: (info: ContainerInfo) => void): void {
    this.listeners.push(listener);
  }
  logs(_uid: string, _name: string, _options: LogOptions, sink: LogSink): () => void {
    sink.end();
    return () => undefined;
  }
  async close(): Promise<void> {}

  running(podUid: string): ContainerInfo[] {
    return this.list().filter((c) => c.podUid === podUid && c.state === 'running');
  }
  /** The container ends by itself (or is stopped). */
  exit(id: string, exitCode: number, signal?: string): void {
    const c = this.containers.get(id)!;
    if (c.state !== 'running') return;
    Object.assign(c, { state: 'exited', exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', finishedAt: new Date(), ...(signal === undefined ? {} : { signal }) });
    for (const l of this.listeners) l({ ...c });
  }
}

async function setup(): Promise<{ runtime: FakeRuntime; kubelet: Kubelet; client: ApiClient; create: (name: string, spec?: Partial<Pod['spec']>) => Promise<Pod>; get: (name: string) => Promise<Pod | undefined>; feed: (name: string) => Promise<Pod> }> {
  const api = await startTestApi();
  cleanups.push(() => api.stop());
  await api.client.create('nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'w1' } });
  const runtime = new FakeRuntime();
  const kubelet = new Kubelet({
    nodeName: 'w1',
    address: '127.0.0.1',
    api: api.client,
    runtime,
    ports: new PortAllocator('127.0.0.1', { from: 26000, to: 26099 }),
    logger: silentLogger,
    services: () => [],
    backoff: { initialMs: 200, maxMs: 800, resetAfterMs: 60_000 },
    baseEnv: {},
  });
  cleanups.push(() => kubelet.shutdown(0));
  const get = async (name: string): Promise<Pod | undefined> => {
    try {
      return await api.client.get<Pod>('pods', 'default', name);
    } catch {
      return undefined;
    }
  };
  /** What the agent's pod informer would do: hand the kubelet the pod as the API has it now. */
  const feed = async (name: string): Promise<Pod> => {
    const p = (await get(name))!;
    kubelet.podChanged(p);
    return p;
  };
  const create = async (name: string, spec: Partial<Pod['spec']> = {}): Promise<Pod> => {
    await api.client.create<Pod>('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers: [{ name: 'c', command: ['x'] }], ...spec } });
    await api.client.bind('default', name, 'w1');
    return feed(name);
  };
  return { runtime, kubelet, client: api.client, create, get, feed };
}

test('restartPolicy Always restarts with a doubling backoff shown as CrashLoopBackOff', async () => {
  const { runtime, create, get } = await setup();
  const pod = await create('always');
  const uid = pod.metadata.uid!;
  await until('the container runs', () => runtime.running(uid).length === 1);
  const restarts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [c] = runtime.running(uid);
    const exitedAt = Date.now();
    runtime.exit(c!.id, 1);
    await until('it is restarted', () => runtime.running(uid).length === 1, 3000);
    restarts.push(Date.now() - exitedAt);
  }
  // 200 ms, 400 ms, 800 ms (capped): each wait at least its backoff, and they grow.
  assert.ok(restarts[0]! >= 190 && restarts[1]! >= 390 && restarts[2]! >= 790, `waits ${restarts.join(', ')} ms`);
  const p = await until('the status shows 3 restarts', async () => {
    const now = await get('always');
    return now?.status?.containerStatuses?.[0]?.restartCount === 3 ? now : undefined;
  });
  assert.equal(p.status!.phase, 'Running');
  assert.equal(p.status!.containerStatuses![0]!.lastState!.terminated!.exitCode, 1);
  // Between an exit and the restart the container waits in CrashLoopBackOff.
  const [c] = runtime.running(uid);
  runtime.exit(c!.id, 2);
  const waiting = await until('CrashLoopBackOff is reported', async () => {
    const s = (await get('always'))?.status?.containerStatuses?.[0]?.state?.waiting;
    return s?.reason === 'CrashLoopBackOff' ? s : undefined;
  }, 2000);
  assert.match(waiting.message!, /back-off 1s restarting failed container=c pod=always_default/);
});

test('OnFailure and Never: the phase a pod ends in', async () => {
  const { runtime, create, get } = await setup();
  const ok = await create('onfailure-ok', { restartPolicy: 'OnFailure' });
  const never = await create('never-fails', { restartPolicy: 'Never' });
  const retried = await create('onfailure-retried', { restartPolicy: 'OnFailure' });
  for (const p of [ok, never, retried]) await until('running', () => runtime.running(p.metadata.uid!).length === 1);
  runtime.exit(runtime.running(ok.metadata.uid!)[0]!.id, 0);
  runtime.exit(runtime.running(never.metadata.uid!)[0]!.id, 3);
  runtime.exit(runtime.running(retried.metadata.uid!)[0]!.id, 3);
  await until('onfailure-ok Succeeded', async () => (await get('onfailure-ok'))?.status?.phase === 'Succeeded');
  await until('never-fails Failed', async () => (await get('never-fails'))?.status?.phase === 'Failed');
  await until('onfailure-retried runs again', () => runtime.running(retried.metadata.uid!).length === 1, 3000);
  assert.equal(runtime.running(ok.metadata.uid!).length + runtime.running(never.metadata.uid!).length, 0, 'finished pods are not restarted');
  const failed = await get('never-fails');
  assert.equal(failed!.status!.containerStatuses![0]!.state!.terminated!.exitCode, 3);
  assert.equal(failed!.status!.conditions!.find((c) => c.type === 'Ready')!.reason, 'PodCompleted');
});

test('a start that fails is retried after its backoff, and its reason is shown meanwhile', async () => {
  const { runtime, create, get } = await setup();
  runtime.failStarts.set('c', 2);
  const pod = await create('flaky-start');
  const reason = await until('the failure is reported', async () => (await get('flaky-start'))?.status?.containerStatuses?.[0]?.state?.waiting?.reason);
  assert.equal(reason, 'RunContainerError');
  await until('the third start succeeds', () => runtime.running(pod.metadata.uid!).length === 1, 3000);
});

test('deletion: the containers are stopped, then the pod object is removed', async () => {
  const { runtime, client, create, get, feed } = await setup();
  const pod = await create('doomed');
  await until('running', () => runtime.running(pod.metadata.uid!).length === 1);
  // With a grace period the API only marks the pod; the kubelet finishes the deletion.
  await client.delete('pods', 'default', 'doomed', { gracePeriodSeconds: 30 });
  assert.ok((await get('doomed'))?.metadata.deletionTimestamp !== undefined);
  await feed('doomed');
  await until('the pod object is gone', async () => (await get('doomed')) === undefined, 5000);
  assert.equal(runtime.running(pod.metadata.uid!).length, 0, 'its container was stopped first');
  await until('and then removed', () => runtime.list().every((c) => c.podUid !== pod.metadata.uid));
});

test('a pod deleted and created again under its name while the watch was down: the old one is stopped', async () => {
  const { runtime, kubelet, client, create, get } = await setup();
  const first = await create('same-name');
  await until('the first runs', () => runtime.running(first.metadata.uid!).length === 1);
  // Force-deleted and created anew: a relist shows the kubelet only "an update" of same-name.
  await client.delete('pods', 'default', 'same-name', { gracePeriodSeconds: 0 });
  await client.create<Pod>('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'same-name', namespace: 'default' }, spec: { containers: [{ name: 'c', command: ['x'] }] } });
  await client.bind('default', 'same-name', 'w1');
  const second = (await get('same-name'))!;
  kubelet.podUpdated(first, second);
  await until('the second runs and the first is stopped', () => runtime.running(second.metadata.uid!).length === 1 && runtime.running(first.metadata.uid!).length === 0, 5000);
  // And the periodic resync catches a deletion no event reported at all.
  const third = await create('lost-event');
  await until('it runs', () => runtime.running(third.metadata.uid!).length === 1);
  await client.delete('pods', 'default', 'lost-event', { gracePeriodSeconds: 0 });
  kubelet.resync([second]);
  await until('resync stopped it', () => runtime.running(third.metadata.uid!).length === 0, 5000);
});

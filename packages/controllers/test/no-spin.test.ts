// Controllers never spin (issue 12): each controller runs against objects whose writes always
// fail, on fake time (node:test's mocked setTimeout/setInterval/Date), and every write attempt
// is counted. A failing key is retried with exponential backoff (5 ms doubling), so in a window
// of W ms one target can be attempted at most 1 + log2(W/5 + 1) times per write a sync makes
// to it, and never more than once a second once the delays pass a second. A controller that
// retries at once, or on every event its own successful writes cause, makes thousands.
import assert from 'node:assert/strict';
import { afterEach, describe, mock, test } from 'node:test';
import { InformerFactory, WorkQueue, type KubeObject } from '@flotilla/api';
import { silentLogger } from '@flotilla/wire';
import type { Controller, ControllerContext } from '../src/context.ts';
import { DeploymentController } from '../src/deployment.ts';
import { EndpointsController } from '../src/endpoints.ts';
import { GarbageCollector } from '../src/gc.ts';
import { NodeLifecycleController } from '../src/nodelifecycle.ts';
import { ReplicaSetController } from '../src/replicaset.ts';
import { FakeApi, type Attempt, type FailureMode } from './fake-api.ts';

/** Fake epoch of the runs. */
const T0 = Date.parse('2026-06-01T00:00:00Z');
/** The window: 30 s of fake time, moved on 5 ms at a time. */
const WINDOW_MS = 30_000;
const STEP_MS = 5;
/** Syncs of one failing key within the window: 1 + the retries whose cumulative backoff 5·(2^k − 1) fits. */
const MAX_SYNCS = 1 + Math.floor(Math.log2(WINDOW_MS / 5 + 1));
/** From here on every retry delay is over a second (5·2^8 ms = 1.28 s after 9 failures). */
const SLOW_FROM_MS = 10_000;

/** Lets promise chains and fake-API replies run between two steps of fake time. */
async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
}

async function runFor(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += STEP_MS) {
    mock.timers.tick(STEP_MS);
    await flush();
  }
}

function enableFakeTime(): void {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: T0 });
}

afterEach(() => mock.timers.reset());

const meta = (namespace: string | undefined, name: string, extra: Record<string, unknown> = {}) => ({
  name,
  ...(namespace === undefined ? {} : { namespace }),
  uid: `uid-${name}`,
  creationTimestamp: '2026-06-01T00:00:00Z',
  generation: 1,
  ...extra,
});

interface Scenario {
  readonly name: string;
  /** What exists before the controller starts. */
  seed(api: FakeApi): void;
  /** The controller under test, or undefined when this commit has none (it then fails). */
  make(ctx: ControllerContext): Promise<Controller | undefined>;
}

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'i', command: ['sleep', '1000'] }], restartPolicy: 'Always', terminationGracePeriodSeconds: 30, schedulerName: 'default-scheduler' } };

const SCENARIOS: Scenario[] = [
  {
    name: 'ReplicaSet (pods to create)',
    seed: (api) => api.seed('replicasets', { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: meta('x', 'web'), spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template } } as KubeObject),
    make: async (ctx) => new ReplicaSetController(ctx),
  },
  {
    name: 'Deployment (a ReplicaSet to create)',
    seed: (api) =>
      api.seed('deployments', {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: meta('x', 'd'),
        spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template, revisionHistoryLimit: 10, progressDeadlineSeconds: 600, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } },
      } as KubeObject),
    make: async (ctx) => new DeploymentController(ctx),
  },
  {
    name: 'node lifecycle (a node whose Lease stopped)',
    seed: (api) =>
      api.seed('nodes', { apiVersion: 'v1', kind: 'Node', metadata: meta(undefined, 'n1'), spec: {}, status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-06-01T00:00:00Z', lastTransitionTime: '2026-06-01T00:00:00Z' }] } } as KubeObject),
    make: async (ctx) => new NodeLifecycleController(ctx, { gracePeriodMs: 1000, evictionMs: 1000 }),
  },
  {
    name: 'Endpoints (Endpoints to create)',
    seed: (api) => api.seed('services', { apiVersion: 'v1', kind: 'Service', metadata: meta('x', 'svc'), spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }] } } as KubeObject),
    make: async (ctx) => new EndpointsController(ctx),
  },
  {
    name: 'garbage collector (a pod whose owner is gone)',
    seed: (api) =>
      api.seed('pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: meta('x', 'orphan', { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'gone', uid: 'uid-gone', controller: true, blockOwnerDeletion: true }] }),
        spec: template.spec,
        status: { phase: 'Pending' },
      } as KubeObject),
    make: async (ctx) => new GarbageCollector(ctx),
  },
  {
    name: 'namespace (a terminating namespace with a pod)',
    seed: (api) => {
      api.seed('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: meta(undefined, 'x', { deletionTimestamp: '2026-06-01T00:00:00Z', deletionGracePeriodSeconds: 0 }), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Terminating' } } as KubeObject);
      api.seed('pods', { apiVersion: 'v1', kind: 'Pod', metadata: meta('x', 'p'), spec: template.spec, status: { phase: 'Pending' } } as KubeObject);
    },
    make: async (ctx) => {
      const m = await import('../src/namespace.ts').catch(() => undefined);
      return m === undefined ? undefined : new m.NamespaceController(ctx);
    },
  },
  {
    name: 'event TTL (an event 2 h old)',
    seed: (api) => api.seed('events', { apiVersion: 'v1', kind: 'Event', metadata: meta('x', 'old', { creationTimestamp: '2026-05-31T22:00:00Z' }), involvedObject: { kind: 'Pod', name: 'p', namespace: 'x' }, reason: 'Started', lastTimestamp: '2026-05-31T22:00:00Z' } as KubeObject),
    make: async (ctx) => {
      const m = await import('../src/event-ttl.ts').catch(() => undefined);
      return m === undefined ? undefined : new m.EventTTLController(ctx);
    },
  },
];

/** Attempts per target, and per target the most made in any one second from SLOW_FROM_MS on. */
function tally(attempts: readonly Attempt[]): Map<string, { total: number; perSecond: number[] }> {
  const out = new Map<string, { total: number; perSecond: number[] }>();
  for (const a of attempts) {
    const key = `${a.verb} ${a.target}`;
    let t = out.get(key);
    if (t === undefined) out.set(key, (t = { total: 0, perSecond: Array.from({ length: Math.ceil(WINDOW_MS / 1000) + 1 }, () => 0) }));
    t.total++;
    t.perSecond[Math.floor((a.at - T0) / 1000)]!++;
  }
  return out;
}

const MODES: FailureMode[] = ['error500', 'conflict', 'namespace-gone'];

describe('no controller spins on writes that always fail', () => {
  for (const scenario of SCENARIOS) {
    for (const mode of MODES) {
      test(`${scenario.name}, writes failing: ${mode}`, async () => {
        enableFakeTime();
        const api = new FakeApi(mode);
        scenario.seed(api);
        const informers = new InformerFactory(api, silentLogger);
        const controller = await scenario.make({ client: api, informers, logger: silentLogger, now: () => Date.now() });
        assert.ok(controller !== undefined, `this commit has no ${scenario.name} controller`);
        await informers.start();
        controller.start();
        try {
          await runFor(WINDOW_MS);
        } finally {
          controller.stop();
          informers.stop();
        }
        const counts = tally(api.attempts);
        assert.ok(api.attempts.length > 0, 'the scenario makes the controller write (or the test proves nothing)');
        if (process.env.NO_SPIN_REPORT !== undefined) console.log(`${scenario.name} / ${mode}: ${[...counts].map(([k, t]) => `${k}=${t.total}`).join(", ")}`);
        const report = [...counts].map(([k, t]) => `${k}: ${t.total} attempts; per second ${t.perSecond.join(',')}`).join('\n');
        for (const [target, t] of counts) {
          assert.ok(t.total <= MAX_SYNCS, `${target} attempted ${t.total} times in ${WINDOW_MS / 1000} s; backoff allows at most ${MAX_SYNCS}\n${report}`);
          const late = Math.max(...t.perSecond.slice(SLOW_FROM_MS / 1000, WINDOW_MS / 1000));
          assert.ok(late <= 1, `${target} attempted ${late} times in one second after ${SLOW_FROM_MS / 1000} s of failures\n${report}`);
        }
      });
    }
  }
});

describe('WorkQueue rate limiting (fake time)', () => {
  test('a failing key re-added by events on every step still runs on its backoff schedule', async () => {
    enableFakeTime();
    const runs: number[] = [];
    const q = new WorkQueue(async () => {
      runs.push(Date.now() - T0);
      throw new Error('refused');
    });
    q.add('k');
    for (let t = 0; t < 2000; t += STEP_MS) {
      q.add('k'); // an informer event (say, caused by the sync's own status write)
      mock.timers.tick(STEP_MS);
      await flush();
    }
    q.stop();
    // 0, 5, 15, 35, 75, 155, 315, 635, 1275 (each retry after 5·2^n more), give or take a step.
    assert.ok(runs.length <= 1 + Math.floor(Math.log2(2000 / 5 + 1)), `runs at ${runs.join(', ')}`);
    for (let i = 2; i < runs.length; i++) assert.ok(runs[i]! - runs[i - 1]! >= 5 * 2 ** (i - 1), `gap ${i}: runs at ${runs.join(', ')}`);
  });

  test('many failing keys share the overall bucket: 100 at once, then 10 a second', async () => {
    enableFakeTime();
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        runs++;
        throw new Error('refused');
      },
      { concurrency: 50 },
    );
    for (let i = 0; i < 500; i++) q.add(`k${i}`);
    await runFor(10_000);
    q.stop();
    // 500 first runs; retries: the burst of 100 plus 10 a second.
    assert.ok(runs <= 500 + 100 + 10 * 10 + 1, `${runs} runs`);
    assert.ok(runs >= 500 + 100, `${runs} runs: the burst is used`);
  });

  test('a success forgets the backoff: the next failure waits 5 ms again', async () => {
    enableFakeTime();
    const runs: number[] = [];
    let fail = 5;
    const q = new WorkQueue(async () => {
      runs.push(Date.now() - T0);
      if (fail-- > 0) throw new Error('refused');
    });
    q.add('k');
    await runFor(500);
    assert.equal(q.failuresOf('k'), 0);
    const before = runs.length;
    fail = 1;
    q.add('k');
    await runFor(20);
    q.stop();
    assert.equal(runs.length, before + 2, `runs at ${runs.join(', ')}`);
  });
});

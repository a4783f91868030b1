// The framework around the plugins: incremental NodeInfo sums (against a recomputation, with
// fast-check), the FitError message, how many nodes are looked at per pod, one decision end
// to end, the cache's assume/forget/confirm, the queue's backoff and parking, and profile
// mistakes reported at construction.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ApiClient } from '@flotilla/api';
import { silentLogger } from '@flotilla/wire';
import { SchedulerCache } from '../src/cache.ts';
import { fitErrorMessage } from '../src/core/fit-error.ts';
import { numFeasibleNodesToFind, schedulePod, type ScheduleState } from '../src/core/schedule-pod.ts';
import { Framework } from '../src/framework/framework.ts';
import { NodeInfo } from '../src/framework/node-info.ts';
import { newPodInfo } from '../src/framework/pod-info.ts';
import { defaultProfile, inTreeRegistry } from '../src/framework/registry.ts';
import { unschedulable } from '../src/framework/status.ts';
import type { FilterPlugin } from '../src/framework/types.ts';
import { SchedulingQueue } from '../src/queue.ts';
import { info, node, nodeInfo, pod } from './helpers.ts';

const handle = { client: {} as ApiClient, logger: silentLogger };
const fw = new Framework(inTreeRegistry, defaultProfile, handle);
const state = (): ScheduleState => ({ nextStartNodeIndex: 0, percentageOfNodesToScore: 0, random: () => 0.5 });

describe('NodeInfo', () => {
  test('running sums equal a recomputation after any sequence of adds and removes', () => {
    const cpus = ['0', '100m', '250m', '1', '1.5', '0.1'];
    const mems = ['0', '1Ki', '128Mi', '1.5Gi', '1e3'];
    const arbPod = fc.record({ cpu: fc.option(fc.constantFrom(...cpus), { nil: undefined }), memory: fc.option(fc.constantFrom(...mems), { nil: undefined }), owner: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(7), arbPod), { maxLength: 60 }), (ops) => {
        const ni = new NodeInfo('n', node('n'));
        const held = new Map<number, ReturnType<typeof info>>();
        for (const [add, slot, spec] of ops) {
          if (add && !held.has(slot)) {
            const p = info(pod(`p${slot}`, Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined))));
            held.set(slot, p);
            ni.addPod(p);
          } else if (!add && held.has(slot)) {
            ni.removePod(held.get(slot)!);
            held.delete(slot);
          }
        }
        const all = [...held.values()];
        assert.equal(ni.requested.milliCpu, all.reduce((s, p) => s + p.requests.milliCpu, 0));
        assert.equal(ni.requested.memory, all.reduce((s, p) => s + p.requests.memory, 0));
        assert.equal(ni.nonZeroRequested.milliCpu, all.reduce((s, p) => s + p.nonZeroRequests.milliCpu, 0));
        assert.equal(ni.pods.size, all.length);
        for (const owner of ['a', 'b']) assert.equal(ni.ownerCounts.get(`owner-${owner}`) ?? 0, all.filter((p) => p.ownerUid === `owner-${owner}`).length);
      }),
    );
  });

  test('quantities are integers: ten 100m pods are exactly one core', () => {
    const ni = new NodeInfo('n', node('n'));
    for (let i = 0; i < 10; i++) ni.addPod(newPodInfo(pod(`p${i}`, { cpu: '0.1' })));
    assert.equal(ni.requested.milliCpu, 1000);
  });
});

describe('FitError message', () => {
  test("kube-scheduler's words: counts per reason, sorted as strings", () => {
    const reasons = new Map([
      ['Insufficient memory', 2],
      ['node(s) had untolerated taint {node.kubernetes.io/unreachable: }', 1],
    ]);
    assert.equal(fitErrorMessage(3, reasons), '0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 Insufficient memory.');
    assert.equal(fitErrorMessage(0, new Map()), 'no nodes available to schedule pods');
  });
});

describe('percentageOfNodesToScore', () => {
  test("kube-scheduler's adaptive numbers", () => {
    assert.equal(numFeasibleNodesToFind(50), 50);
    assert.equal(numFeasibleNodesToFind(150), 100); // 48% of 150 is below the floor of 100
    assert.equal(numFeasibleNodesToFind(1000), 420); // 50 - 1000/125 = 42%
    assert.equal(numFeasibleNodesToFind(5000), 500); // 10%
    assert.equal(numFeasibleNodesToFind(20_000), 1000); // never below 5%
    assert.equal(numFeasibleNodesToFind(1000, 10), 100);
    assert.equal(numFeasibleNodesToFind(1000, 100), 1000);
  });

  test('filtering stops once enough nodes are feasible, and the next pod starts where it stopped', () => {
    const nodes = Array.from({ length: 300 }, (_, i) => nodeInfo(node(`n${i}`)));
    const s = state();
    const r = schedulePod(fw, info(pod('p')), nodes, s);
    assert.equal(r.kind, 'Scheduled');
    if (r.kind !== 'Scheduled') return;
    assert.equal(r.evaluatedNodes, 144); // 300 * 48%
    assert.equal(s.nextStartNodeIndex, 144);
    schedulePod(fw, info(pod('q')), nodes, s);
    assert.equal(s.nextStartNodeIndex, 288);
  });
});

describe('schedulePod', () => {
  test('picks a feasible node with the best score', () => {
    const nodes = [nodeInfo(node('small', { cpu: '1' })), nodeInfo(node('busy', { cpu: '8' }), [pod('x', { cpu: '6' })]), nodeInfo(node('free', { cpu: '8' }))];
    const r = schedulePod(fw, info(pod('p', { cpu: '2' })), nodes, state());
    assert.equal(r.kind === 'Scheduled' && r.node.name, 'free');
  });

  test('fits nowhere: the histogram of first-failing reasons, one count per node and reason', () => {
    const nodes = [
      nodeInfo(node('a', { memory: '1Gi', taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] })),
      nodeInfo(node('b', { memory: '1Gi', cpu: '1' })),
      nodeInfo(node('c', { memory: '1Gi' })),
      nodeInfo(node('d', { ready: false })),
    ];
    const r = schedulePod(fw, info(pod('p', { cpu: '2', memory: '2Gi' })), nodes, state());
    assert.equal(r.kind, 'Unschedulable');
    assert.equal(r.kind === 'Unschedulable' && r.message, '0/4 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 1 node(s) were not ready, 2 Insufficient memory.');
  });
});

describe('SchedulerCache', () => {
  test('an assumed pod holds its node until forgotten; once confirmed, forget does nothing', () => {
    const cache = new SchedulerCache();
    cache.addOrUpdateNode(node('n1', { cpu: '2' }));
    cache.addOrUpdateNode(node('n2', { cpu: '2' }));
    const p = pod('p', { cpu: '1' });
    cache.assume(newPodInfo(p), 'n1');
    assert.equal(cache.nodeInfo('n1')!.requested.milliCpu, 1000);
    cache.forget(p.metadata.uid!);
    assert.equal(cache.nodeInfo('n1')!.requested.milliCpu, 0);
    cache.assume(newPodInfo(p), 'n1');
    // The informer shows it bound elsewhere (a rival won): the pod moves with its resources.
    cache.addOrUpdateBoundPod({ ...p, spec: { ...p.spec, nodeName: 'n2' } });
    cache.forget(p.metadata.uid!);
    assert.equal(cache.nodeInfo('n1')!.requested.milliCpu, 0);
    assert.equal(cache.nodeInfo('n2')!.requested.milliCpu, 1000);
    cache.removePod(p.metadata.uid!);
    assert.equal(cache.nodeInfo('n2')!.requested.milliCpu, 0);
  });

  test('pods on a node the informer has not shown are counted once it appears', () => {
    const cache = new SchedulerCache();
    cache.addOrUpdateBoundPod(pod('early', { cpu: '1', nodeName: 'late' }));
    assert.equal(cache.schedulableNodes().length, 0);
    cache.addOrUpdateNode(node('late', { cpu: '4' }));
    assert.deepEqual(cache.schedulableNodes().map((n) => [n.name, n.requested.milliCpu]), [['late', 1000]]);
    cache.removeNode('late');
    assert.equal(cache.schedulableNodes().length, 0);
  });
});

describe('SchedulingQueue', () => {
  const make = () => {
    let clock = 1_000_000;
    const q = new SchedulingQueue({ now: () => clock, onActive: () => {} });
    return { q, advance: (ms: number) => (clock += ms) };
  };

  test('backoff doubles from 1 s up to 10 s', () => {
    const { q } = make();
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => q.backoffDuration(n)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
    q.stop();
  });

  test('FIFO, each key once; a parked pod is not popped until a cluster event, and then not before its backoff', async () => {
    const { q, advance } = make();
    q.add('a');
    q.add('b');
    q.add('a');
    assert.equal(q.pop(), 'a');
    assert.equal(q.pop(), 'b');
    assert.equal(q.pop(), undefined);
    q.unschedulable('a');
    q.done('b');
    q.add('b');
    assert.equal(q.pop(), 'b', 'a parked pod does not come back by itself');
    assert.equal(q.pop(), undefined);
    advance(1000);
    q.moveAllToActiveOrBackoff();
    assert.equal(q.pop(), 'a', 'its backoff had run out: active at once');
    q.unschedulable('a'); // second failure: 2 s of backoff
    q.moveAllToActiveOrBackoff();
    assert.equal(q.pop(), undefined, 'still backing off');
    q.stop();
  });

  test('a deleted pod leaves the queue', () => {
    const { q } = make();
    q.add('a');
    q.done('a');
    assert.equal(q.pop(), undefined);
    q.stop();
  });
});

describe('Framework profiles', () => {
  test('unknown names and plugins listed at the wrong extension point are refused', () => {
    assert.throws(() => new Framework(inTreeRegistry, { ...defaultProfile, filter: ['NoSuchPlugin'] }, handle), /"NoSuchPlugin" is not registered/);
    assert.throws(() => new Framework(inTreeRegistry, { ...defaultProfile, score: [{ name: 'NodeResourcesFit', weight: 1 }] }, handle), /listed under score but has no score\(\)/);
  });

  test('an out-of-tree filter takes part in decisions and in the message', () => {
    const noOdd = { name: 'NoOdd', filter: (_p, n) => (Number(n.name.slice(1)) % 2 === 1 ? unschedulable('node(s) were odd') : { code: 'Success', reasons: [] }) } satisfies FilterPlugin;
    const custom = new Framework({ ...inTreeRegistry, NoOdd: () => noOdd }, { ...defaultProfile, filter: [...defaultProfile.filter, 'NoOdd'] }, handle);
    const nodes = [nodeInfo(node('n1')), nodeInfo(node('n3')), nodeInfo(node('n4', { cpu: '1' }))];
    const r = schedulePod(custom, info(pod('p', { cpu: '2' })), nodes, state());
    assert.equal(r.kind === 'Unschedulable' && r.message, '0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were odd.');
  });
});

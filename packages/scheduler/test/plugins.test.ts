// Each plugin as a pure function of a PodInfo and a NodeInfo: what passes, what is refused
// and with which kube-scheduler reason, and how scores order nodes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { balancedAllocation } from '../src/plugins/balanced-allocation.ts';
import { leastAllocated } from '../src/plugins/least-allocated.ts';
import { matchesRequirement, nodeAffinity } from '../src/plugins/node-affinity.ts';
import { nodeReady } from '../src/plugins/node-ready.ts';
import { nodeResourcesFit } from '../src/plugins/node-resources-fit.ts';
import { nodeUnschedulable } from '../src/plugins/node-unschedulable.ts';
import { ownerSpread } from '../src/plugins/owner-spread.ts';
import { taintToleration } from '../src/plugins/taint-toleration.ts';
import { newDefaultBinder } from '../src/plugins/default-binder.ts';
import { ApiError, type ApiClient, type Toleration } from '@flotilla/api';
import { silentLogger } from '@flotilla/wire';
import { info, node, nodeInfo, pod } from './helpers.ts';

describe('NodeResourcesFit', () => {
  const n = node('n', { cpu: '2', memory: '4Gi', pods: '3' });

  test('fits while the sum of requests (existing + new) stays within allocatable', () => {
    const ni = nodeInfo(n, [pod('a', { cpu: '1', memory: '1Gi' }), pod('b', { cpu: '500m', memory: '1Gi' })]);
    assert.equal(ni.requested.milliCpu, 1500);
    assert.deepEqual(nodeResourcesFit.filter(info(pod('p', { cpu: '500m', memory: '2Gi' })), ni), { code: 'Success', reasons: [] });
  });

  test('refuses with one reason per short resource', () => {
    const ni = nodeInfo(n, [pod('a', { cpu: '1500m', memory: '3Gi' })]);
    assert.deepEqual(nodeResourcesFit.filter(info(pod('p', { cpu: '501m' })), ni), { code: 'Unschedulable', reasons: ['Insufficient cpu'] });
    assert.deepEqual(nodeResourcesFit.filter(info(pod('p', { cpu: '600m', memory: '1025Mi' })), ni), { code: 'Unschedulable', reasons: ['Insufficient cpu', 'Insufficient memory'] });
  });

  test('a pod without requests fits a full node; the pods limit still applies', () => {
    const full = nodeInfo(n, [pod('a', { cpu: '2', memory: '4Gi' })]);
    assert.equal(nodeResourcesFit.filter(info(pod('p')), full).code, 'Success');
    const crowded = nodeInfo(n, [pod('a'), pod('b'), pod('c')]);
    assert.deepEqual(nodeResourcesFit.filter(info(pod('p')), crowded).reasons, ['Too many pods']);
  });

  test('a node that lists no allocatable cpu has none', () => {
    const bare = nodeInfo({ ...n, status: { allocatable: { memory: '1Gi' } } });
    assert.deepEqual(nodeResourcesFit.filter(info(pod('p', { cpu: '1m' })), bare).reasons, ['Insufficient cpu']);
  });

  test('removing a pod gives its resources back', () => {
    const a = pod('a', { cpu: '2' });
    const ni = nodeInfo(n, [a]);
    assert.equal(nodeResourcesFit.filter(info(pod('p', { cpu: '1' })), ni).code, 'Unschedulable');
    ni.removePod(info(a));
    assert.equal(nodeResourcesFit.filter(info(pod('p', { cpu: '1' })), ni).code, 'Success');
  });
});

describe('NodeAffinity', () => {
  const labels = { zone: 'a', disk: 'ssd', gen: '5' };
  const ni = nodeInfo(node('n', { labels }));
  const REASON = "node(s) didn't match Pod's node affinity/selector";
  const withTerms = (...terms: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt'; values?: string[] }[][]) =>
    info(pod('p', { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms.map((t) => ({ matchExpressions: t })) } } } }));

  test('nodeSelector: every label must match', () => {
    assert.equal(nodeAffinity.filter(info(pod('p', { nodeSelector: { zone: 'a', disk: 'ssd' } })), ni).code, 'Success');
    assert.deepEqual(nodeAffinity.filter(info(pod('p', { nodeSelector: { zone: 'a', disk: 'hdd' } })), ni), { code: 'UnschedulableAndUnresolvable', reasons: [REASON] });
    assert.equal(nodeAffinity.filter(info(pod('p', { nodeSelector: { rack: '1' } })), ni).code, 'UnschedulableAndUnresolvable');
  });

  test('each operator, matching and not', () => {
    const cases: [Parameters<typeof matchesRequirement>[0], boolean][] = [
      [{ key: 'zone', operator: 'In', values: ['a', 'b'] }, true],
      [{ key: 'zone', operator: 'In', values: ['b'] }, false],
      [{ key: 'rack', operator: 'In', values: ['a'] }, false],
      [{ key: 'zone', operator: 'NotIn', values: ['b'] }, true],
      [{ key: 'zone', operator: 'NotIn', values: ['a'] }, false],
      [{ key: 'rack', operator: 'NotIn', values: ['a'] }, true],
      [{ key: 'disk', operator: 'Exists' }, true],
      [{ key: 'rack', operator: 'Exists' }, false],
      [{ key: 'rack', operator: 'DoesNotExist' }, true],
      [{ key: 'disk', operator: 'DoesNotExist' }, false],
      [{ key: 'gen', operator: 'Gt', values: ['4'] }, true],
      [{ key: 'gen', operator: 'Gt', values: ['5'] }, false],
      [{ key: 'gen', operator: 'Lt', values: ['6'] }, true],
      [{ key: 'gen', operator: 'Lt', values: ['5'] }, false],
      [{ key: 'zone', operator: 'Gt', values: ['1'] }, false], // not an integer
      [{ key: 'rack', operator: 'Lt', values: ['9'] }, false], // absent
    ];
    for (const [req, want] of cases) assert.equal(matchesRequirement(req, labels), want, JSON.stringify(req));
  });

  test('label keys such as constructor and toString exist only on nodes that have them (issue 12)', () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      assert.equal(matchesRequirement({ key, operator: 'Exists' }, labels), false, `${key} Exists`);
      assert.equal(matchesRequirement({ key, operator: 'DoesNotExist' }, labels), true, `${key} DoesNotExist`);
      assert.equal(matchesRequirement({ key, operator: 'NotIn', values: ['x'] }, labels), true, `${key} NotIn`);
    }
    assert.equal(matchesRequirement({ key: 'constructor', operator: 'Exists' }, { constructor: 'yes' } as Record<string, string>), true);
  });

  test('terms are ORed, expressions within a term ANDed, an empty term matches nothing', () => {
    assert.equal(nodeAffinity.filter(withTerms([{ key: 'zone', operator: 'In', values: ['b'] }], [{ key: 'disk', operator: 'Exists' }]), ni).code, 'Success');
    assert.equal(nodeAffinity.filter(withTerms([{ key: 'zone', operator: 'In', values: ['a'] }, { key: 'disk', operator: 'In', values: ['hdd'] }]), ni).code, 'UnschedulableAndUnresolvable');
    assert.equal(nodeAffinity.filter(withTerms([]), ni).code, 'UnschedulableAndUnresolvable');
  });

  test('nodeSelector and affinity must both hold', () => {
    const p = pod('p', { nodeSelector: { zone: 'b' }, affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'Exists' }] }] } } } });
    assert.equal(nodeAffinity.filter(info(p), ni).code, 'UnschedulableAndUnresolvable');
  });
});

describe('TaintToleration', () => {
  const unreachable = { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' as const };
  const dedicated = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' as const };
  const soft = { key: 'spot', value: 'yes', effect: 'PreferNoSchedule' as const };

  test('NoSchedule and NoExecute taints block, with the untolerated taint named', () => {
    assert.deepEqual(taintToleration.filter(info(pod('p')), nodeInfo(node('n', { taints: [unreachable] }))), {
      code: 'UnschedulableAndUnresolvable',
      reasons: ['node(s) had untolerated taint {node.kubernetes.io/unreachable: }'],
    });
    assert.deepEqual(taintToleration.filter(info(pod('p')), nodeInfo(node('n', { taints: [dedicated] }))).reasons, ['node(s) had untolerated taint {dedicated: gpu}']);
  });

  test('tolerations: Equal needs the value, Exists does not, an empty key with Exists tolerates all, effects must agree', () => {
    const n = nodeInfo(node('n', { taints: [dedicated] }));
    const ok = (tolerations: Toleration[]) => taintToleration.filter(info(pod('p', { tolerations })), n).code === 'Success';
    assert.equal(ok([{ key: 'dedicated', operator: 'Equal', value: 'gpu' }]), true);
    assert.equal(ok([{ key: 'dedicated', value: 'gpu' }]), true);
    assert.equal(ok([{ key: 'dedicated', operator: 'Equal', value: 'cpu' }]), false);
    assert.equal(ok([{ key: 'dedicated', operator: 'Exists' }]), true);
    assert.equal(ok([{ operator: 'Exists' }]), true);
    assert.equal(ok([{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }]), false);
    assert.equal(ok([{ key: 'other', operator: 'Exists' }]), false);
  });

  test('PreferNoSchedule does not block but scores the node lower', () => {
    const tainted = nodeInfo(node('t', { taints: [soft] }));
    const clean = nodeInfo(node('c'));
    const p = info(pod('p'));
    assert.equal(taintToleration.filter(p, tainted).code, 'Success');
    const scores = [taintToleration.score(p, tainted), taintToleration.score(p, clean)];
    taintToleration.normalizeScore(p, scores);
    assert.deepEqual(scores, [0, 100]);
    const tolerant = info(pod('p', { tolerations: [{ key: 'spot', operator: 'Exists' }] }));
    assert.equal(taintToleration.score(tolerant, tainted), 0);
  });
});

describe('NodeReady and NodeUnschedulable', () => {
  test('only Ready=True nodes pass', () => {
    assert.equal(nodeReady.filter(info(pod('p')), nodeInfo(node('n'))).code, 'Success');
    assert.deepEqual(nodeReady.filter(info(pod('p')), nodeInfo(node('n', { ready: false }))).reasons, ['node(s) were not ready']);
    const noConditions = node('n');
    noConditions.status = { allocatable: { cpu: '1' } };
    assert.equal(nodeReady.filter(info(pod('p')), nodeInfo(noConditions)).code, 'UnschedulableAndUnresolvable');
  });

  test('a cordoned node refuses pods unless they tolerate node.kubernetes.io/unschedulable', () => {
    const cordoned = nodeInfo(node('n', { unschedulable: true }));
    assert.deepEqual(nodeUnschedulable.filter(info(pod('p')), cordoned).reasons, ['node(s) were unschedulable']);
    assert.equal(nodeUnschedulable.filter(info(pod('p', { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] })), cordoned).code, 'Success');
    assert.equal(nodeUnschedulable.filter(info(pod('p')), nodeInfo(node('n'))).code, 'Success');
  });
});

describe('scores', () => {
  test('LeastAllocated prefers the emptier node and counts request-less pods at 100m/200Mi', () => {
    const p = info(pod('p', { cpu: '1', memory: '1Gi' }));
    const empty = nodeInfo(node('e', { cpu: '4', memory: '8Gi' }));
    const busy = nodeInfo(node('b', { cpu: '4', memory: '8Gi' }), [pod('x', { cpu: '2', memory: '4Gi' })]);
    assert.equal(leastAllocated.score(p, empty), Math.floor((75 + 87.5) / 2));
    assert.ok(leastAllocated.score(p, empty) > leastAllocated.score(p, busy));
    const bestEffort = nodeInfo(node('be', { cpu: '4', memory: '8Gi' }), [pod('y'), pod('z')]);
    assert.ok(leastAllocated.score(p, bestEffort) < leastAllocated.score(p, empty), 'pods without requests still count for scoring');
  });

  test('BalancedAllocation prefers the node whose cpu and memory would be used alike', () => {
    const p = info(pod('p', { cpu: '1', memory: '2Gi' }));
    const cpuHeavy = nodeInfo(node('c', { cpu: '4', memory: '8Gi' }), [pod('x', { cpu: '2' })]); // 3/4 cpu vs 2/8 mem
    const even = nodeInfo(node('e', { cpu: '4', memory: '8Gi' }), [pod('x', { cpu: '1', memory: '2Gi' })]); // 2/4 vs 4/8
    assert.equal(balancedAllocation.score(p, even), 100);
    assert.equal(balancedAllocation.score(p, cpuHeavy), 75);
    assert.equal(balancedAllocation.score(info(pod('q')), cpuHeavy), 0, 'a request-less pod does not tip the balance');
  });

  test('OwnerSpread gives the node with most of the owner\'s pods 0 and those with none 100; no owner, no preference', () => {
    const p = info(pod('p', { owner: 'rs' }));
    const nodes = [nodeInfo(node('a'), [pod('1', { owner: 'rs' }), pod('2', { owner: 'rs' })]), nodeInfo(node('b'), [pod('3', { owner: 'rs' }), pod('4', { owner: 'other' })]), nodeInfo(node('c'), [pod('5', { owner: 'other' })])];
    const scores = nodes.map((n) => ownerSpread.score(p, n));
    assert.deepEqual(scores, [2, 1, 0]);
    ownerSpread.normalizeScore(p, scores);
    assert.deepEqual(scores, [0, 50, 100]);
    const orphan = info(pod('o'));
    const flat = nodes.map((n) => ownerSpread.score(orphan, n));
    ownerSpread.normalizeScore(orphan, flat);
    assert.deepEqual(flat, [100, 100, 100]);
  });
});

describe('DefaultBinder', () => {
  const client = (err: ApiError | undefined): ApiClient => ({ bind: async () => { if (err !== undefined) throw err; } }) as unknown as ApiClient;
  const p = pod('p');

  test('maps a bound/gone pod (409/404) to unresolvable and anything else to Error', async () => {
    assert.equal((await newDefaultBinder({ client: client(undefined), logger: silentLogger }).bind(p, 'n')).code, 'Success');
    assert.equal((await newDefaultBinder({ client: client(new ApiError('Conflict', 'pod p is already assigned to node "x"')), logger: silentLogger }).bind(p, 'n')).code, 'UnschedulableAndUnresolvable');
    assert.equal((await newDefaultBinder({ client: client(new ApiError('NotFound', 'pods "p" not found')), logger: silentLogger }).bind(p, 'n')).code, 'UnschedulableAndUnresolvable');
    assert.deepEqual(await newDefaultBinder({ client: client(new ApiError('InternalError', 'disk full')), logger: silentLogger }).bind(p, 'n'), { code: 'Error', reasons: ['disk full'] });
  });
});

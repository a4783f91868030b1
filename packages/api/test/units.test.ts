// The API package's pure parts: quantities, names, label and field selectors, the three patch
// formats, validation and update rules, and who may do what.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ApiError, authorize, formatBytes, formatCpu, isQuantity, jsonPatch, matches, mergePatch, parseFieldSelector, parseLabelSelector, parseQuantity, formatSelector, PatchError, RESOURCES, strategicMergePatch, type KubeObject, type User } from '@flotilla/api';
import { checkDns1123Label, checkDns1123Subdomain } from '@flotilla/api';
import { authorizeCreate, authorizePod } from '../src/auth.ts';
import { checkBody, prepareCreate, prepareUpdate } from '../src/strategy.ts';
import { cloneJson, measureJson } from '../src/patch.ts';

const kind = (k: string) => RESOURCES.find((r) => r.kind === k)!;

/** The field paths of a 422, or fails if `fn` did not throw one. */
function invalidFields(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
    assert.equal(err.code, 422, err.message);
    return (err.details?.causes ?? []).map((c) => c.field ?? '').sort();
  }
  assert.fail('expected 422 Invalid');
}

describe('quantities', () => {
  test('CPU and memory quantities parse to base units', () => {
    const cases: [string, number][] = [
      ['500m', 0.5],
      ['2', 2],
      ['0.25', 0.25],
      ['128Mi', 128 * 2 ** 20],
      ['1Gi', 2 ** 30],
      ['1.5Gi', 1.5 * 2 ** 30],
      ['1k', 1000],
      ['1M', 1e6],
      ['1e3', 1000],
      ['100n', 1e-7],
    ];
    for (const [s, n] of cases) assert.ok(Math.abs(parseQuantity(s) - n) < 1e-12, `${s} → ${parseQuantity(s)}`);
    for (const bad of ['', 'abc', '12 apples', '1.2.3', 'Mi', '5mm', '1 Gi', '--1', '1KiB']) {
      assert.equal(isQuantity(bad), false, bad);
      assert.throws(() => parseQuantity(bad), /is not a quantity/);
    }
  });

  test('formatting and parsing round-trip (fast-check)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1_000_000 }), (milli) => Math.round(parseQuantity(formatCpu(milli / 1000)) * 1000) === milli));
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (bytes) => parseQuantity(formatBytes(bytes)) === bytes));
  });
});

describe('names', () => {
  test('DNS-1123 labels and subdomains', () => {
    assert.equal(checkDns1123Label('web-1'), undefined);
    assert.equal(checkDns1123Subdomain('web.example-1.io'), undefined);
    for (const bad of ['Web', 'web_1', '-web', 'web-', '', 'a'.repeat(64)]) assert.notEqual(checkDns1123Label(bad), undefined, bad);
    assert.notEqual(checkDns1123Label('a.b'), undefined, 'a label has no dots');
    assert.notEqual(checkDns1123Subdomain('a..b'), undefined);
    assert.notEqual(checkDns1123Subdomain('a'.repeat(254)), undefined);
  });
});

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', env: 'prod' };

  test('every operator, as kubectl sends them', () => {
    const yes = ['', 'app=web', 'app==web', 'app!=db', 'missing!=x', 'app in (web,db)', 'tier notin (back)', 'missing notin (x)', 'app', '!missing', 'app=web, tier in ( front ), !missing', 'example.com/key!=v'];
    const no = ['app=db', 'app!=web', 'app in (db)', 'tier notin (front,back)', 'missing', '!app', 'missing in (x)', 'app=web,env=dev'];
    for (const s of yes) assert.equal(matches(parseLabelSelector(s), labels), true, s);
    for (const s of no) assert.equal(matches(parseLabelSelector(s), labels), false, s);
  });

  test('malformed selectors are refused with the reason', () => {
    for (const [s, why] of [
      ['a in (', /unclosed/],
      ['a in ()', /at least one value/],
      ['a between (x)', /expected =, !=, in or notin/],
      ['=x', /expected a label key/],
      ['a=b c', /expected ,/],
      ['Bad Key=x', /expected ,|expected =/],
      ['a=has space', /expected ,/],
      ['a=-bad-', /label value/],
      ['-a=x', /label key/],
    ] as const) {
      assert.throws(() => parseLabelSelector(s), why, s);
    }
  });

  test('a printed selector parses back to one that decides the same (fast-check)', () => {
    const key = fc.constantFrom('app', 'tier', 'example.com/role', 'k8s.io/x');
    const value = fc.constantFrom('web', 'db', 'a-1', 'x.y');
    const req = fc.oneof(
      fc.record({ key, op: fc.constantFrom('=' as const, '!=' as const), values: fc.tuple(value) }),
      fc.record({ key, op: fc.constantFrom('in' as const, 'notin' as const), values: fc.uniqueArray(value, { minLength: 1, maxLength: 3 }) }),
      fc.record({ key, op: fc.constantFrom('exists' as const, '!' as const), values: fc.constant([] as string[]) }),
    );
    const labelSet = fc.dictionary(key, value, { maxKeys: 4 });
    fc.assert(
      fc.property(fc.array(req, { maxLength: 4 }), labelSet, (sel, l) => {
        const back = parseLabelSelector(formatSelector(sel));
        return matches(back, l) === matches(sel, l);
      }),
    );
  });

  test('field selectors: supported fields only, = and !=', () => {
    const fields = parseFieldSelector('metadata.name=a, status.phase!=Running,spec.nodeName==', ['metadata.name', 'status.phase', 'spec.nodeName']);
    assert.deepEqual(fields, [
      { field: 'metadata.name', op: '=', value: 'a' },
      { field: 'status.phase', op: '!=', value: 'Running' },
      { field: 'spec.nodeName', op: '=', value: '' },
    ]);
    assert.throws(() => parseFieldSelector('spec.image=x', ['metadata.name']), /not supported/);
    assert.throws(() => parseFieldSelector('metadata.name', ['metadata.name']), /field=value/);
  });
});

describe('patches', () => {
  test('JSON merge patch (RFC 7386 examples)', () => {
    assert.deepEqual(mergePatch({ a: 'b' }, { a: 'c' }), { a: 'c' });
    assert.deepEqual(mergePatch({ a: 'b' }, { b: 'c' }), { a: 'b', b: 'c' });
    assert.deepEqual(mergePatch({ a: 'b' }, { a: null }), {});
    assert.deepEqual(mergePatch({ a: 'b', b: 'c' }, { a: null }), { b: 'c' });
    assert.deepEqual(mergePatch({ a: ['b'] }, { a: 'c' }), { a: 'c' });
    assert.deepEqual(mergePatch({ a: { b: 'c' } }, { a: { b: 'd', c: null } }), { a: { b: 'd' } });
    assert.deepEqual(mergePatch({ a: [{ b: 'c' }] }, { a: [1] }), { a: [1] });
    assert.deepEqual(mergePatch({ e: null }, { a: 1 }), { e: null, a: 1 });
    assert.deepEqual(mergePatch({}, { a: { bb: { ccc: null } } }), { a: { bb: {} } });
  });

  test('JSON patch: add, remove, replace, move, copy, test; a failing test changes nothing', () => {
    const doc = { metadata: { labels: { a: '1' } }, spec: { list: [1, 2, 3] } };
    const out = jsonPatch(doc, [
      { op: 'add', path: '/metadata/labels/b', value: '2' },
      { op: 'replace', path: '/metadata/labels/a', value: 'one' },
      { op: 'remove', path: '/spec/list/0' },
      { op: 'add', path: '/spec/list/-', value: 4 },
      { op: 'copy', from: '/metadata/labels/b', path: '/metadata/labels/c' },
      { op: 'move', from: '/metadata/labels/c', path: '/metadata/labels/d~1e' },
      { op: 'test', path: '/spec/list', value: [2, 3, 4] },
    ]);
    assert.deepEqual(out, { metadata: { labels: { a: 'one', b: '2', 'd/e': '2' } }, spec: { list: [2, 3, 4] } });
    assert.deepEqual(doc, { metadata: { labels: { a: '1' } }, spec: { list: [1, 2, 3] } }, 'the input is not modified');
    assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/metadata/labels/a', value: '2' }]), PatchError);
    assert.throws(() => jsonPatch(doc, [{ op: 'remove', path: '/nope' }]), /does not exist/);
    assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/spec/list/x', value: 1 }]), /does not exist/);
    assert.throws(() => jsonPatch(doc, [{ op: 'add', path: '/spec/list/9', value: 1 }]), /out of range/);
    assert.throws(() => jsonPatch(doc, { op: 'add' }), /must be a list/);
    assert.throws(() => jsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), /unknown op/);
  });

  test('patches cannot reach a prototype', () => {
    for (const path of ['/__proto__/polluted', '/constructor/prototype/polluted', '/metadata/__proto__/polluted']) {
      assert.throws(() => jsonPatch({ metadata: {} }, [{ op: 'add', path, value: 'yes' }]), PatchError, path);
    }
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.throws(() => mergePatch({}, JSON.parse('{"__proto__": {"polluted": "yes"}}')), PatchError);
    assert.throws(() => strategicMergePatch({}, JSON.parse('{"spec": {"__proto__": {"polluted": "yes"}}}')), PatchError);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  test('strategic merge patch: named lists merge by key, directives, finalizers as a set', () => {
    const pod = {
      metadata: { labels: { app: 'web' }, finalizers: ['a'] },
      spec: {
        containers: [
          { name: 'main', image: 'v1', ports: [{ containerPort: 80, name: 'http' }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
          { name: 'side', image: 's1' },
        ],
      },
      status: { conditions: [{ type: 'Ready', status: 'False' }] },
    };
    const out = strategicMergePatch(pod, {
      metadata: { finalizers: ['b', 'a'] },
      spec: {
        containers: [
          { name: 'main', image: 'v2', ports: [{ containerPort: 443, name: 'https' }], env: [{ name: 'B', $patch: 'delete' }, { name: 'C', value: '3' }] },
          { name: 'side', $patch: 'delete' },
          { name: 'new', image: 'n1' },
        ],
      },
      status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }] },
    }) as typeof pod;
    assert.deepEqual(out.metadata.finalizers, ['a', 'b']);
    assert.deepEqual(out.spec.containers.map((c) => c.name), ['main', 'new']);
    assert.equal(out.spec.containers[0]!.image, 'v2');
    assert.deepEqual(out.spec.containers[0]!.ports!.map((p) => p.containerPort), [80, 443]);
    assert.deepEqual(out.spec.containers[0]!.env, [{ name: 'A', value: '1' }, { name: 'C', value: '3' }]);
    assert.deepEqual(out.status.conditions, [{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }]);
    // $patch: replace swaps a whole map; $retainKeys drops the others; $deleteFromPrimitiveList.
    assert.deepEqual(strategicMergePatch({ a: { x: 1, y: 2 } }, { a: { $patch: 'replace', z: 3 } }), { a: { z: 3 } });
    assert.deepEqual(strategicMergePatch({ s: { type: 'A', a: 1, b: 2 } }, { s: { $retainKeys: ['type', 'b'], type: 'B' } }), { s: { type: 'B', b: 2 } });
    assert.deepEqual(strategicMergePatch({ metadata: { finalizers: ['a', 'b'] } }, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }), { metadata: { finalizers: ['b'] } });
    // A list without a merge key is replaced, as with a merge patch.
    assert.deepEqual(strategicMergePatch({ spec: { containers: [{ name: 'c', command: ['a', 'b'] }] } }, { spec: { containers: [{ name: 'c', command: ['x'] }] } }), { spec: { containers: [{ name: 'c', command: ['x'] }] } });
    // Service ports merge by port, container ports by containerPort.
    const svc = strategicMergePatch({ spec: { ports: [{ port: 80, targetPort: 8080 }] } }, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }) as { spec: { ports: unknown[] } };
    assert.deepEqual(svc.spec.ports, [{ port: 80, targetPort: 9090 }]);
  });
});

describe('validation and update rules', () => {
  const pod = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { app: 'x' } },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
    ...over,
  });
  const create = (k: string, body: unknown, ns: string | undefined = 'default'): KubeObject => prepareCreate(kind(k), checkBody(kind(k), body, ns));

  test('a valid pod gets server-owned metadata and defaults', () => {
    const p = create('Pod', pod()) as KubeObject & { spec: { restartPolicy: string; containers: { imagePullPolicy?: string }[] }; status: { phase: string } };
    assert.match(p.metadata.uid!, /^[0-9a-f-]{36}$/);
    assert.match(p.metadata.creationTimestamp!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(p.metadata.namespace, 'default');
    assert.equal(p.spec.restartPolicy, 'Always');
    assert.equal(p.status.phase, 'Pending');
  });

  test('every invalid field is reported with its path', () => {
    assert.deepEqual(
      invalidFields(() =>
        create(
          'Pod',
          pod({
            metadata: { name: 'Bad_Name', labels: { 'a b': 'x', ok: '-bad-' }, annotations: { 'x/y/z': '1' } },
            spec: {
              restartPolicy: 'Sometimes',
              containers: [
                { name: 'c', image: 'i', ports: [{ containerPort: 0 }, { containerPort: 80, protocol: 'ICMP' }], resources: { requests: { cpu: 'lots' }, limits: { memory: '1Gi' } } },
                { name: 'c', image: 'i', env: [{ name: '1BAD' }], livenessProbe: { periodSeconds: 1 } },
              ],
            },
          }),
        ),
      ),
      [
        'metadata.annotations',
        'metadata.labels',
        'metadata.labels',
        'metadata.name',
        'spec.containers[0].ports[0].containerPort',
        'spec.containers[0].ports[1].protocol',
        'spec.containers[0].resources.requests[cpu]',
        'spec.containers[1].env[0].name',
        'spec.containers[1].livenessProbe',
        'spec.containers[1].name',
        'spec.restartPolicy',
      ],
    );
    assert.deepEqual(invalidFields(() => create('Pod', pod({ spec: { containers: [{ name: 'c', image: 'i', resources: { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } } }] } }))), ['spec.containers[0].resources.requests[memory]']);
    assert.deepEqual(invalidFields(() => create('Pod', { metadata: {}, spec: { containers: [] } })), ['metadata.name', 'spec.containers']);
    // What the agent could not hand to a process, and env sources it does not know.
    const bad = { name: 'c', command: ['sh', 'a\0b'], readinessProbe: { exec: { command: ['x', 7] } }, env: [{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'spec.secret' } } }, { name: 'B', value: 'v', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] };
    assert.deepEqual(invalidFields(() => create('Pod', pod({ spec: { containers: [bad] } }))), ['spec.containers[0].command', 'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath', 'spec.containers[0].env[1].valueFrom', 'spec.containers[0].readinessProbe.exec.command']);
    assert.deepEqual(invalidFields(() => create('Service', { metadata: { name: 's' }, spec: { internalTrafficPolicy: 'Nearby', ports: [{ port: 80 }] } })), ['spec.internalTrafficPolicy']);
  });

  test('deployments: the selector must match the template; replicas not negative', () => {
    const d = {
      metadata: { name: 'd' },
      spec: { replicas: -1, selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
    };
    assert.deepEqual(invalidFields(() => create('Deployment', d)), ['spec.replicas', 'spec.template.metadata.labels']);
  });

  test('services: ports in range, named when there are several', () => {
    const s = { metadata: { name: 's' }, spec: { selector: { app: 'a' }, ports: [{ port: 70000 }, { port: 81 }] } };
    // As in Kubernetes, targetPort defaults to port, so it is out of range too.
    assert.deepEqual(invalidFields(() => create('Service', s)), ['spec.ports[0].name', 'spec.ports[0].port', 'spec.ports[0].targetPort', 'spec.ports[1].name']);
  });

  test('the body must match the URL', () => {
    assert.throws(() => checkBody(kind('Pod'), pod({ kind: 'Service' }), 'default'), /kind in the data/);
    assert.throws(() => checkBody(kind('Pod'), pod({ apiVersion: 'apps/v1' }), 'default'), /API version/);
    assert.throws(() => checkBody(kind('Pod'), { ...pod(), metadata: { name: 'p', namespace: 'other' } }, 'default'), /namespace of the provided object/);
    assert.throws(() => checkBody(kind('Pod'), pod(), 'default', 'q'), /does not match the name on the URL/);
    assert.throws(() => checkBody(kind('Pod'), [1], 'default'), /must be a JSON object/);
  });

  test('updates: status and spec are separate, immutable fields stay, creationTimestamp is kept', () => {
    const r = kind('Pod');
    const old = create('Pod', pod()) as KubeObject & { spec: Record<string, unknown>; status: Record<string, unknown> };
    old.metadata.resourceVersion = '5';
    const next = structuredClone(old);
    next.metadata.labels = { app: 'y' };
    next.metadata.creationTimestamp = '1999-01-01T00:00:00.000Z';
    next.status = { phase: 'Running' };
    const updated = prepareUpdate(r, next, old, undefined) as typeof old;
    assert.deepEqual(updated.metadata.labels, { app: 'y' });
    assert.equal(updated.metadata.creationTimestamp, old.metadata.creationTimestamp);
    assert.equal(updated.status['phase'], 'Pending', 'a main-resource update keeps the stored status');
    assert.equal(updated.metadata.generation, 1, 'no spec change, same generation');
    const statusOnly = structuredClone(old);
    statusOnly.status = { phase: 'Running' };
    statusOnly.spec['restartPolicy'] = 'Never';
    const st = prepareUpdate(r, statusOnly, old, 'status') as typeof old;
    assert.equal(st.status['phase'], 'Running');
    assert.equal(st.spec['restartPolicy'], 'Always', 'a status update keeps the stored spec');
    const bound = structuredClone(old);
    bound.spec['nodeName'] = 'n1';
    const rebind = structuredClone(bound);
    rebind.spec['nodeName'] = 'n2';
    assert.deepEqual(invalidFields(() => prepareUpdate(r, rebind, bound, undefined)), ['spec.nodeName']);
    const uid = structuredClone(old);
    uid.metadata.uid = 'another';
    assert.deepEqual(invalidFields(() => prepareUpdate(r, uid, old, undefined)), ['metadata.uid']);
  });
});

describe('authorization', () => {
  const admin: User = { name: 'admin', role: 'admin' };
  const viewer: User = { name: 'viewer', role: 'viewer' };
  const node: User = { name: 'system:node:w1', role: 'node', node: 'w1' };
  const can = (user: User, verb: Parameters<typeof authorize>[1]['verb'], resource: string, extra: { name?: string; namespace?: string; subresource?: string } = {}): string => {
    try {
      return authorize(user, { verb, resource, subresource: extra.subresource, namespace: extra.namespace, name: extra.name });
    } catch (err) {
      assert.ok(err instanceof ApiError && err.code === 403, String(err));
      return 'deny';
    }
  };

  test('admin does everything; viewer only reads', () => {
    for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] as const) {
      assert.equal(can(admin, verb, 'pods'), 'allow');
      assert.equal(can(viewer, verb, 'deployments'), ['get', 'list', 'watch'].includes(verb) ? 'allow' : 'deny', verb);
    }
  });

  test('a node: its own Node and Lease, status of its own pods, reads of what it needs', () => {
    assert.equal(can(node, 'update', 'nodes', { name: 'w1' }), 'allow');
    assert.equal(can(node, 'patch', 'nodes', { name: 'w2' }), 'deny');
    assert.equal(can(node, 'delete', 'nodes', { name: 'w1' }), 'deny');
    assert.equal(can(node, 'create', 'nodes'), 'object');
    assert.doesNotThrow(() => authorizeCreate(node, 'nodes', { metadata: { name: 'w1' } }));
    assert.throws(() => authorizeCreate(node, 'nodes', { metadata: { name: 'w2' } }), /only its own Node/);
    assert.equal(can(node, 'update', 'leases', { name: 'w1', namespace: 'kube-node-lease' }), 'allow');
    assert.equal(can(node, 'update', 'leases', { name: 'w1', namespace: 'default' }), 'deny');
    assert.equal(can(node, 'update', 'leases', { name: 'w2', namespace: 'kube-node-lease' }), 'deny');
    assert.equal(can(node, 'list', 'pods'), 'allow');
    assert.equal(can(node, 'create', 'pods', { namespace: 'default' }), 'deny');
    assert.equal(can(node, 'update', 'pods', { namespace: 'default', name: 'p' }), 'deny');
    assert.equal(can(node, 'update', 'pods', { namespace: 'default', name: 'p', subresource: 'status' }), 'object');
    assert.doesNotThrow(() => authorizePod(node, { metadata: { name: 'p' }, spec: { nodeName: 'w1' } }));
    assert.throws(() => authorizePod(node, { metadata: { name: 'p' }, spec: { nodeName: 'w2' } }), /bound to node "w1"/);
    assert.throws(() => authorizePod(node, { metadata: { name: 'p' }, spec: {} }), /bound to node/);
    assert.equal(can(node, 'create', 'pods', { namespace: 'default', name: 'p', subresource: 'binding' }), 'deny');
    assert.equal(can(node, 'list', 'deployments'), 'deny');
    assert.equal(can(node, 'watch', 'services'), 'allow');
    assert.equal(can(node, 'create', 'events', { namespace: 'default' }), 'allow');
  });
});

describe('measureJson and cloneJson (what JSON patches count and copy)', () => {
  /** The plain recursive count: bytes as measureJson defines them, depth, values. */
  function reference(v: unknown): { bytes: number; depth: number; values: number } {
    if (typeof v === 'string') return { bytes: v.length + 2, depth: 0, values: 1 };
    if (typeof v === 'number') return { bytes: String(v).length, depth: 0, values: 1 };
    if (typeof v !== 'object' || v === null) return { bytes: 5, depth: 0, values: 1 };
    const entries = Array.isArray(v) ? v.map((x) => ['', x] as const) : Object.entries(v);
    let bytes = 2 + entries.length;
    let depth = 1;
    let values = 1;
    for (const [k, x] of entries) {
      if (!Array.isArray(v)) bytes += k.length + 3;
      const m = reference(x);
      bytes += m.bytes;
      depth = Math.max(depth, m.depth + 1);
      values += m.values;
    }
    return { bytes, depth, values };
  }
  const json = fc.jsonValue({ maxDepth: 6 }).chain((v) => fc.tuple(fc.constant(v), fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.constant(-0), fc.constant(1e21), fc.constant(Number.MAX_SAFE_INTEGER))));

  /** The property, for any measure: as the reference, and cut off past a limit only when the value passes it. */
  const agrees = (measure: typeof measureJson) =>
    fc.property(json, fc.nat({ max: 400 }), ([v, n], limit) => {
      const value = { v, n };
      const want = reference(value);
      assert.deepEqual(measure(value), want);
      const cut = measure(value, limit);
      assert.equal(cut.bytes > limit, want.bytes > limit, `limit ${limit}: ${cut.bytes} of ${want.bytes}`);
      const few = measure(value, Infinity, Math.floor(limit / 10));
      assert.equal(few.values > Math.floor(limit / 10), want.values > Math.floor(limit / 10));
    });

  test('measures what the plain recursive count does, and stops past a limit only when the value passes it', () => {
    fc.assert(agrees(measureJson), { numRuns: 500 });
  });

  test('the property catches a measure that is off: negative numbers one byte short', () => {
    const broken: typeof measureJson = (v, limit, values) => {
      const m = measureJson(v, limit, values);
      const negatives = JSON.stringify(v).match(/-\d/g)?.length ?? 0;
      return { ...m, bytes: m.bytes - negatives };
    };
    assert.throws(() => fc.assert(agrees(broken), { numRuns: 500 }));
  });

  test('cloneJson copies every object and list (nothing shared) and keeps a "__proto__" key a key', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const c = cloneJson(v);
        assert.deepEqual(c, v);
        const shared = (a: unknown, b: unknown): boolean => {
          if (typeof a !== 'object' || a === null) return false;
          if (a === b) return true;
          return Object.keys(a).some((k) => shared((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
        };
        assert.equal(shared(c, v), false);
      }),
      { numRuns: 300 },
    );
    const odd = JSON.parse('{"__proto__": {"x": 1}, "a": [1]}') as Record<string, unknown>;
    const c = cloneJson(odd);
    assert.deepEqual(Object.keys(c), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(c), Object.prototype);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });
});

// Requests built to hurt the master (issue 12): a patch that doubles the object until the heap
// is gone, nesting deeper than the stack, selectors that make a regular expression backtrack,
// label keys that every object has through its prototype, a broken %-escape in the path, and a
// node writing a pod status of the wrong shape. Each is refused with a Status naming the bound
// it passed, and nothing changes.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { ApiServer, Authenticator, jsonPatch, matches, mergePatch, PatchError, strategicMergePatch, type Pod } from '@flotilla/api';
import { rawHttp, startTestApi, type TestApi } from '@flotilla/api/testing';
import { silentLogger } from '@flotilla/wire';

const TOKEN = 'hostile-input-admin-token';
const MIB3 = 3 * 1024 * 1024;
let api: TestApi;
let server: ApiServer;
let base: string;

before(async () => {
  api = await startTestApi();
  // The test API has no tokens; this second server on the same store answers real HTTP as admin.
  server = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: new Authenticator([{ name: 'admin', token: TOKEN, role: 'admin' }]), logger: silentLogger });
  const a = server.address();
  base = `http://${a.host}:${a.port}`;
});

after(async () => {
  await server?.close();
  await api?.stop();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json', accept = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType, accept },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

const PODS = '/api/v1/namespaces/default/pods';

async function createPod(name: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Promise<Pod> {
  const res = await call('POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name, ...extra }, spec: { containers: [{ name: 'c', image: 'x' }] } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body as Pod;
}

/** The pod's resourceVersion now: unchanged after a refused request. */
async function versionOf(name: string): Promise<string> {
  const res = await call('GET', `${PODS}/${name}`);
  assert.equal(res.status, 200);
  return (res.body as Pod).metadata.resourceVersion!;
}

/** JSON text nested `depth` objects deep (JSON.stringify itself overflows the stack near 5,000). */
function nestedJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}"bottom"${'}'.repeat(depth)}`;
}

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

// --- JSON patch: operations, size, copies ---------------------------------------------------

test('a 1.6 KB JSON patch that copies the spec into itself 36 times (2^36 times larger) is refused with 413 naming the size bound', async () => {
  const pod = await createPod('bomb');
  const ops = Array.from({ length: 36 }, (_, i) => ({ op: 'copy', from: '/spec', path: `/spec/${i}` }));
  assert.ok(JSON.stringify(ops).length < 1700);
  const res = await call('PATCH', `${PODS}/bomb`, ops, 'application/json-patch+json');
  assert.equal(res.status, 413, JSON.stringify(res.body).slice(0, 300));
  assert.equal(res.body.reason, 'RequestEntityTooLarge');
  // Whichever bound it passes first: the bytes, or (with a pod's many small values) the values.
  assert.match(res.body.message, new RegExp(`exceed ${MIB3} bytes|hold more than 100000 values`));
  assert.equal(await versionOf('bomb'), pod.metadata.resourceVersion);
});

test('a JSON patch of 10,001 operations is refused with 413 naming the bound; 10,000 apply', async () => {
  const pod = await createPod('many-ops');
  const op = { op: 'test', path: '/metadata/name', value: 'many-ops' };
  const refused = await call('PATCH', `${PODS}/many-ops`, Array(10_001).fill(op), 'application/json-patch+json');
  assert.equal(refused.status, 413, JSON.stringify(refused.body).slice(0, 300));
  assert.match(refused.body.message, /10001 operations; the limit is 10000/);
  assert.equal(await versionOf('many-ops'), pod.metadata.resourceVersion);
  const applied = await call('PATCH', `${PODS}/many-ops`, [...Array(9_999).fill(op), { op: 'add', path: '/metadata/labels', value: { ok: 'yes' } }], 'application/json-patch+json');
  assert.equal(applied.status, 200, JSON.stringify(applied.body).slice(0, 300));
  assert.equal(applied.body.metadata.labels.ok, 'yes');
});

test('copying a 200 KB value and removing it again, over and over, is refused once the copies pass 3 MiB', async () => {
  const pod = await createPod('copy-loop', { annotations: { big: 'x'.repeat(200_000) } });
  const ops = Array.from({ length: 20 }, () => [
    { op: 'copy', from: '/metadata/annotations/big', path: '/metadata/annotations/copy' },
    { op: 'remove', path: '/metadata/annotations/copy' },
  ]).flat();
  const res = await call('PATCH', `${PODS}/copy-loop`, ops, 'application/json-patch+json');
  assert.equal(res.status, 413, JSON.stringify(res.body).slice(0, 300));
  assert.match(res.body.message, new RegExp(`copies or compares more than ${MIB3} bytes`));
  assert.equal(await versionOf('copy-loop'), pod.metadata.resourceVersion);
});

test('a JSON patch that copies a spec of 30,000 small objects into itself is refused at the first copy past 100,000 values', () => {
  // Fuzz campaign: within the byte bounds, copies of a spec of many small values held a
  // master's loop for 80-180 ms (measuring and copying cost by the value, not the byte).
  const target = { metadata: { name: 'many' }, spec: { x: Array.from({ length: 30_000 }, (_, i) => ({ a: i, b: 'x' })) } };
  const ops = Array.from({ length: 12 }, (_, i) => ({ op: 'copy', from: '/spec', path: `/spec/c${i}` }));
  assert.throws(() => jsonPatch(target, ops), (e: unknown) => e instanceof PatchError && /operation 0: the patch(ed object would hold| copies or compares) more than 100000 values/.test((e as Error).message));
  // One copy of a smaller list is fine.
  const small = { metadata: { name: 'few' }, spec: { x: Array.from({ length: 1000 }, (_, i) => ({ a: i })) } };
  assert.equal(((jsonPatch(small, [{ op: 'copy', from: '/spec/x', path: '/spec/y' }]) as typeof small & { spec: { y: unknown[] } }).spec.y).length, 1000);
});

test('a merge patch whose result would pass 3 MiB is refused with 413 naming the bound', async () => {
  const pod = await createPod('merge-large', { annotations: { big: 'x'.repeat(200_000) } });
  const res = await call('PATCH', `${PODS}/merge-large/status`, { status: { extra: 'y'.repeat(MIB3 - 100_000) } }, 'application/merge-patch+json');
  assert.equal(res.status, 413, JSON.stringify(res.body).slice(0, 300));
  assert.match(res.body.message, new RegExp(`the patched object would exceed ${MIB3} bytes`));
  assert.equal(await versionOf('merge-large'), pod.metadata.resourceVersion);
});

// --- nesting -----------------------------------------------------------------------------------

test('patches nested 3,000 levels deep are 413 naming the depth bound, and the object can still be patched', async () => {
  // Before the bound: the merge patch was stored, and every later patch of the pod overflowed
  // the stack in structuredClone (500); the other two overflowed at once (500). Now the body's
  // own depth check (body.ts) refuses them before any patch function sees them.
  const pod = await createPod('deep');
  const deep = nestedJson(3000);
  for (const [type, body] of [
    ['application/merge-patch+json', `{"status":{"extra":${deep}}}`],
    ['application/strategic-merge-patch+json', `{"status":{"extra":${deep}}}`],
    ['application/json-patch+json', `[{"op":"add","path":"/status/extra","value":${deep}}]`],
  ] as const) {
    const res = await call('PATCH', `${PODS}/deep/status`, body, type);
    assert.equal(res.status, 413, `${type}: ${JSON.stringify(res.body).slice(0, 300)}`);
    assert.match(res.body.message, /levels deep; the limit is 100/, type);
  }
  assert.equal(await versionOf('deep'), pod.metadata.resourceVersion);
  const later = await call('PATCH', `${PODS}/deep`, [{ op: 'add', path: '/metadata/labels', value: { still: 'patchable' } }], 'application/json-patch+json');
  assert.equal(later.status, 200, JSON.stringify(later.body).slice(0, 300));
});

test('the patch functions refuse a value nested 100,000 levels deep with a PatchError, not a RangeError', () => {
  const deep = nested(100_000);
  const refused = (e: unknown): boolean => e instanceof PatchError && /levels deep; the limit is 100/.test((e as Error).message);
  assert.throws(() => mergePatch({}, { spec: deep }), refused);
  assert.throws(() => strategicMergePatch({}, { spec: deep }), refused);
  assert.throws(() => jsonPatch({ spec: {} }, [{ op: 'add', path: '/spec/x', value: deep }]), refused);
});

test('a JSON patch cannot build nesting deeper than the bound out of shallow operations', () => {
  // Each add is shallow, but together they nest 120 levels.
  const ops = Array.from({ length: 120 }, (_, i) => ({ op: 'add', path: `/a${'/a'.repeat(i)}`, value: {} }));
  assert.throws(() => jsonPatch({}, ops), (e: unknown) => e instanceof PatchError && /would nest 101 levels deep; the limit is 100/.test((e as Error).message));
});

test('a JSON patch that inserts at the front of a long list over and over is refused once it moves 10 million items; appends are not', () => {
  const long = { spec: { x: Array.from({ length: 50_000 }, () => 1) } };
  const front = Array.from({ length: 9_999 }, () => ({ op: 'add', path: '/spec/x/0', value: 2 }));
  // Before the bound: 150 ms of one event loop moving 500 million items.
  assert.throws(() => jsonPatch(long, front), (e: unknown) => e instanceof PatchError && /moves more than 10000000 list items/.test((e as Error).message));
  const removals = Array.from({ length: 9_999 }, () => ({ op: 'remove', path: '/spec/x/0' }));
  assert.throws(() => jsonPatch(long, removals), (e: unknown) => e instanceof PatchError && /moves more than 10000000 list items/.test((e as Error).message));
  const appends = Array.from({ length: 9_999 }, () => ({ op: 'add', path: '/spec/x/-', value: 2 }));
  assert.equal((jsonPatch(long, appends) as typeof long).spec.x.length, 59_999);
});

test('a strategic merge of a long list finds items through an index, not by searching the list for each', () => {
  // Counted, not timed: how often the merge key of a stored item is read.
  let reads = 0;
  const stored = Array.from({ length: 1000 }, (_, i) => {
    const item: Record<string, unknown> = { image: 'x' };
    Object.defineProperty(item, 'name', { enumerable: true, get: () => (reads++, `c${i}`) });
    return item;
  });
  const patch = Array.from({ length: 1000 }, (_, i) => ({ name: `n${i}`, image: 'y' }));
  const out = strategicMergePatch({ spec: { containers: stored } }, { spec: { containers: [{ name: 'c7', $patch: 'delete' }, { name: 'c9', image: 'z' }, ...patch] } }) as { spec: { containers: { name: string; image: string }[] } };
  assert.equal(out.spec.containers.length, 1999);
  assert.equal(out.spec.containers.find((c) => c.name === 'c9')?.image, 'z');
  assert.equal(out.spec.containers.some((c) => c.name === 'c7'), false);
  assert.ok(reads < 5 * stored.length, `${reads} reads of the merge key for ${stored.length} stored items`);
});

// --- selectors ---------------------------------------------------------------------------------

/** A list through the path agents use (frames, no URL length limit), as admin. */
function list(query: Record<string, string>): Promise<unknown> {
  return api.server.execute({ name: 'admin', role: 'admin' }, { method: 'GET', path: PODS, query: new URLSearchParams(query), accept: 'application/json', contentType: undefined, body: async () => undefined });
}

const badRequestNaming = (bound: RegExp) => (e: any) => e?.code === 400 && e?.reason === 'BadRequest' && bound.test(e.message);

// `x<spaces>x` as a value made the old /…\s*(.*?)\s*$/ backtrack quadratically: 64 KB held the
// event loop 2.4 s, 1 MB would hold it for about ten minutes.
const adversarial = (n: number): string => `metadata.name=x${' '.repeat(n)}x`;

test('a 64 KB field or label selector is refused with 400 naming the 10 KiB bound', async () => {
  await assert.rejects(list({ fieldSelector: adversarial(64 * 1024) }), badRequestNaming(/the field selector is 65552 characters long; the limit is 10240/));
  await assert.rejects(list({ labelSelector: `a in (${'b,'.repeat(32 * 1024)}c)` }), badRequestNaming(/the label selector is \d+ characters long; the limit is 10240/));
});

test('a 1 MB field selector is refused with 400 naming the bound', async () => {
  await assert.rejects(list({ fieldSelector: adversarial(1024 * 1024) }), badRequestNaming(/the limit is 10240/));
});

test('field selectors up to the bound still parse as before', async () => {
  await createPod('fs-one');
  const names = async (fieldSelector: string): Promise<string[]> => ((await list({ fieldSelector })) as { body: { items: Pod[] } }).body.items.map((p) => p.metadata.name!);
  assert.deepEqual(await names('  metadata.name  ==  fs-one  '), ['fs-one']);
  assert.deepEqual(await names(`metadata.name=fs-one${' '.repeat(9 * 1024)}`), ['fs-one']);
  assert.deepEqual(await names(adversarial(9 * 1024)), []);
  assert.ok(!(await names('metadata.name!=fs-one')).includes('fs-one'));
  await assert.rejects(list({ fieldSelector: 'metadata.name' }), badRequestNaming(/must be field=value or field!=value/));
  await assert.rejects(list({ fieldSelector: '=x' }), badRequestNaming(/must be field=value or field!=value/));
});

test('label keys such as constructor, toString and hasOwnProperty select only the objects that have them', async () => {
  await createPod('proto-plain');
  await createPod('proto-labelled', { labels: { constructor: 'x', toString: 'y', hasOwnProperty: 'z' } });
  const names = async (labelSelector: string): Promise<string[]> => ((await call('GET', `${PODS}?labelSelector=${encodeURIComponent(labelSelector)}`)).body as { items: Pod[] }).items.map((p) => p.metadata.name!).filter((n) => n.startsWith('proto-'));
  for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
    assert.deepEqual(await names(key), ['proto-labelled'], key);
    assert.deepEqual(await names(`!${key}`), ['proto-plain'], `!${key}`);
    assert.deepEqual(await names(`${key} in (x,y,z)`), ['proto-labelled'], `${key} in`);
  }
  assert.equal(matches([{ key: '__proto__', op: 'exists', values: [] }], {}), false);
  assert.equal(matches([{ key: 'constructor', op: 'exists', values: [] }], undefined), false);
});

// --- paths -------------------------------------------------------------------------------------

test('a malformed %-escape anywhere in a resource path is 400 BadRequest, not 500', async () => {
  for (const path of ['/api/v1/namespaces/%E0%A4%A/pods', `${PODS}/%ZZ`, `${PODS}/%E0/log`, '/api/v1/namespaces/%/pods?watch=true', '/apis/apps/v1/namespaces/default/deployments/%C3']) {
    const res = await call('GET', path);
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.reason, 'BadRequest');
    assert.match(res.body.message, /malformed %-escape/);
  }
});

test('request targets starting "//" are paths on this master: 404 or 400, never 500', async () => {
  const port = server.address().port;
  for (const target of ['//[bad/api/v1/pods', '//evil:99999/api', '//a b/x', '//%zz/api/v1/namespaces']) {
    const answer = await rawHttp(port, `GET ${target.replace(' ', '%20')} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\nconnection: close\r\n\r\n`);
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1]);
    assert.ok(status === 404 || status === 400, `${target}: ${answer.slice(0, 200)}`);
  }
  assert.equal((await call('GET', '/api/v1/namespaces/default')).status, 200);
});

// --- bodies ----------------------------------------------------------------------------------------

test('a body nested 5,000 levels deep is 413 naming the depth bound, on create and on replace; nothing changes', async () => {
  const pod = await createPod('deep-body');
  const before = await versionOf('deep-body');
  const deepPod = (depth: number) => `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"deep-body","resourceVersion":"${before}"},"spec":{"containers":[{"name":"c","image":"x"}]},"extra":${nestedJson(depth)}}`;
  for (const depth of [200, 2_500, 5_000, 50_000]) {
    const created = await call('POST', PODS, deepPod(depth).replace('"deep-body"', `"deep-${depth}"`));
    assert.equal(created.status, 413, `create, ${depth} deep: ${JSON.stringify(created.body).slice(0, 300)}`);
    assert.match(created.body.message, /nests more than 100 levels deep; the limit is 100/);
    const replaced = await call('PUT', `${PODS}/deep-body`, deepPod(depth));
    assert.equal(replaced.status, 413, `replace, ${depth} deep`);
  }
  assert.equal(await versionOf('deep-body'), before);
  assert.equal((await call('GET', `${PODS}/deep-2500`)).status, 404);
  assert.equal(pod.metadata.name, 'deep-body');
});

test('a body of 120,000 annotations or 150,000 values is 413 naming the bound, before it is parsed; 10,000 annotations are fine', async () => {
  await createPod('many-values');
  const before = await versionOf('many-values');
  const pod = (annotations: Record<string, string>, extra?: unknown) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'many-values', resourceVersion: before, annotations }, spec: { containers: [{ name: 'c', image: 'x' }] }, ...(extra === undefined ? {} : { extra }) });
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
  // This one held the master's event loop for 500-600 ms (parse, walk, validate: each ~1 us a member).
  const members = await call('PUT', `${PODS}/many-values`, pod(keys(120_000)));
  assert.equal(members.status, 413, JSON.stringify(members.body).slice(0, 300));
  assert.match(members.body.message, /an object in the request body has more than 10000 members; the limit is 10000/);
  const values = await call('PUT', `${PODS}/many-values`, pod({}, Array.from({ length: 150_000 }, () => 1)));
  assert.equal(values.status, 413);
  assert.match(values.body.message, /holds more than 100000 values; the limit is 100000/);
  assert.equal(await versionOf('many-values'), before);
  const fine = await call('PUT', `${PODS}/many-values`, pod(keys(10_000)));
  assert.equal(fine.status, 200, JSON.stringify(fine.body).slice(0, 300));
});

test('a chunked body over 3 MiB is answered 413 naming the bound, which the client reads; the master goes on', async () => {
  const port = server.address().port;
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: PODS, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const more = (): void => {
      while (sent < 5 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', more);
      }
      req.end();
    };
    req.write('{"pad":"');
    more();
  });
  assert.equal(answer.status, 413, answer.body.slice(0, 300));
  assert.match(answer.body, /exceeds 3145728 bytes, the limit/);
  assert.equal((await call('GET', '/api/v1/namespaces/default')).status, 200);
});

test('a client that breaks off its body (a chunk size past 2^64) is not an internal error of the master', async () => {
  const errors: string[] = [];
  const logger = { ...silentLogger, error: (fields: Record<string, unknown>, msg: string) => void errors.push(`${msg}: ${String(fields['err'])}`), child: () => logger };
  const own = await ApiServer.start({ node: api.node, host: '127.0.0.1', port: 0, authenticator: new Authenticator([{ name: 'admin', token: TOKEN, role: 'admin' }]), logger });
  try {
    // Found by the fuzz campaign: logged "request failed unexpectedly: Error: aborted".
    await rawHttp(own.address().port, `POST ${PODS} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\nconnection: close\r\n\r\nFFFFFFFFFFFFFFFFF\r\n{}\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(errors, []);
  } finally {
    await own.close();
  }
});


// --- status written by nodes ---------------------------------------------------------------------

test('a pod status of the wrong shape is refused with 422 and field paths, and lists keep working', async () => {
  const pod = await createPod('bad-status');
  const put = await call('PUT', `${PODS}/bad-status/status`, { ...pod, status: { phase: 'Running', containerStatuses: 'x' } });
  assert.equal(put.status, 422, JSON.stringify(put.body));
  assert.equal(put.body.reason, 'Invalid');
  assert.deepEqual(put.body.details.causes.map((c: { field: string }) => c.field), ['status.containerStatuses']);
  const patched = await call(
    'PATCH',
    `${PODS}/bad-status/status`,
    {
      status: {
        phase: 'Exploded',
        hostIP: 5,
        message: 'm'.repeat(40_000),
        conditions: [{ type: 1, status: 'Maybe' }, 'x'],
        containerStatuses: [{ name: 'c', ready: 'yes', started: 1, restartCount: -1, state: { waiting: {}, running: {} }, lastState: { terminated: { exitCode: 1.5 } } }, { ready: true }],
        initContainerStatuses: {},
      },
    },
    'application/merge-patch+json',
  );
  assert.equal(patched.status, 422, JSON.stringify(patched.body));
  assert.deepEqual(patched.body.details.causes.map((c: { field: string }) => c.field).sort(), [
    'status.conditions[0].status',
    'status.conditions[0].type',
    'status.conditions[1]',
    'status.containerStatuses[0].lastState.terminated.exitCode',
    'status.containerStatuses[0].ready',
    'status.containerStatuses[0].restartCount',
    'status.containerStatuses[0].started',
    'status.containerStatuses[0].state',
    'status.containerStatuses[1].name',
    'status.hostIP',
    'status.initContainerStatuses',
    'status.message',
    'status.phase',
  ]);
  assert.equal(await versionOf('bad-status'), pod.metadata.resourceVersion);
  const table = await call('GET', PODS, undefined, 'application/json', 'application/json;as=Table;v=v1;g=meta.k8s.io');
  assert.equal(table.status, 200, JSON.stringify(table.body).slice(0, 300));
});

test('a pod status as the agent writes it is accepted', async () => {
  await createPod('good-status');
  const t = '2026-01-01T00:00:00Z';
  const res = await call(
    'PATCH',
    `${PODS}/good-status/status`,
    {
      status: {
        phase: 'Running',
        hostIP: '127.0.0.2',
        podIP: '127.0.0.2',
        startTime: t,
        conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [c]', lastTransitionTime: t }],
        containerStatuses: [{ name: 'c', ready: false, restartCount: 2, started: true, image: 'x', containerID: 'process://1', state: { running: { startedAt: t } }, lastState: { terminated: { exitCode: 137, reason: 'Error', message: 'killed by SIGKILL' } } }],
        portMappings: [{ containerName: 'c', containerPort: 80, protocol: 'TCP', hostPort: 20001 }],
      },
    },
    'application/merge-patch+json',
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status.containerStatuses[0].restartCount, 2);
});

test('a pod created with a status of the wrong shape is refused', async () => {
  const res = await call('POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bad-create' }, spec: { containers: [{ name: 'c', image: 'x' }] }, status: { containerStatuses: [{ name: 'c', restartCount: 'many' }] } });
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.deepEqual(res.body.details.causes.map((c: { field: string }) => c.field), ['status.containerStatuses[0].restartCount']);
});

test('a node status of the wrong shape is refused with 422 and field paths', async () => {
  const created = await call('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'hostile-n1' }, status: { capacity: { cpu: '2' } } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const res = await call('PATCH', '/api/v1/nodes/hostile-n1/status', { status: { addresses: 'x', conditions: [{ type: 'Ready', status: 'Maybe' }], allocatable: { cpu: '-1' }, nodeInfo: { kubeletVersion: 7 } } }, 'application/merge-patch+json');
  assert.equal(res.status, 422, JSON.stringify(res.body));
  assert.deepEqual(res.body.details.causes.map((c: { field: string }) => c.field).sort(), ['status.addresses', 'status.allocatable.cpu', 'status.conditions[0].status', 'status.nodeInfo.kubeletVersion']);
  const ok = await call('PATCH', '/api/v1/nodes/hostile-n1/status', { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.2' }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } }, 'application/merge-patch+json');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
});

// HTTP requests to the API, by family. Each family leans toward one dangerous shape (the
// weights in httpRequest), so a campaign of a minute meets each of them many times.
//
// Placeholders, replaced when sent: {{SSRF}} (host:port of the loopback listener that must
// never be reached), {{RV}} (a recent resourceVersion), {{NODE}} (the fuzzer's node name).
import fc from 'fast-check';
import { Bytes, ManyKeys, Nest, Rep, type Str } from './spec.ts';
import { fieldValue, keyArb, leaf, mutate, mutation, nest, oddString, ownObject, tree } from './gen-values.ts';
import { AGENT_POD, DELETABLE_NS, GHOST_POD, KEEP, KINDS, LOG_NS, MODEL_KINDS, MODEL_NAMES, MODEL_NS, SCRATCH_NAMES, SCRATCH_NS, pathOf, template, type Cred, type Kind } from './world.ts';

export type HttpFamily = 'model' | 'crud' | 'selector-bomb' | 'odd-path' | 'raw' | 'log-absolute' | 'log' | 'json-patch-bomb' | 'body-bomb' | 'watch-many' | 'misc';

export interface BodySpec {
  /** A JSON-ish value (Rep/Nest/ManyKeys leaves allowed), written as JSON text. */
  readonly json?: unknown;
  /** Text or bytes as they are. */
  readonly raw?: Str | Nest | Bytes | ManyKeys;
  readonly pre?: string;
  readonly post?: string;
  /** Content-Length claims this instead (only values that do not make the server wait). */
  readonly lieLength?: number;
  /** No Content-Length: chunked. */
  readonly chunked?: boolean;
}

export interface RawSpec {
  /** The request line, instead of `METHOD TARGET HTTP/1.1`. */
  readonly line?: Str;
  readonly noHost?: boolean;
  /** Header lines written as they are. */
  readonly lines?: readonly Str[];
  /** Bytes after the headers instead of the body (e.g. malformed chunks). */
  readonly tail?: Str;
}

export interface HttpReq {
  readonly family: HttpFamily;
  readonly cred: Cred;
  readonly master: number;
  readonly method: string;
  readonly path: Str;
  /** Encoded when sent (only what must be: spaces as +, %, &, #, +, controls, non-ASCII). */
  readonly query: readonly (readonly [string, Str])[];
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: BodySpec;
  /** A watch or a followed log: held this long after its headers came, then closed. */
  readonly holdMs?: number;
  /** Sent over a TLS socket as written (absolute-form targets, malformed requests). */
  readonly raw?: RawSpec;
  /** Sent this many times at once (many watches). */
  readonly fanout?: number;
}

const credArb: fc.Arbitrary<Cred> = fc.oneof(
  { weight: 55, arbitrary: fc.constant<Cred>('admin') },
  { weight: 12, arbitrary: fc.constant<Cred>('viewer') },
  { weight: 15, arbitrary: fc.constant<Cred>('node') },
  { weight: 8, arbitrary: fc.constant<Cred>('none') },
  { weight: 7, arbitrary: fc.constant<Cred>('garbage') },
  { weight: 3, arbitrary: fc.constant<Cred>('basic') },
);
const masterArb = fc.integer({ min: 0, max: 2 });

/** A kind and where its objects go: model kinds mostly in the model namespaces, others in scratch ones. */
const placed: fc.Arbitrary<{ k: Kind; ns: string | undefined; names: readonly string[] }> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...MODEL_KINDS), fc.constantFrom(...MODEL_NS)).map(([k, ns]) => ({ k, ns, names: MODEL_NAMES })) },
  {
    weight: 5,
    arbitrary: fc.tuple(fc.constantFrom(...KINDS), fc.constantFrom(...SCRATCH_NS)).map(([k, ns]) => ({ k, ns: k.namespaced ? ns : undefined, names: k.resource === 'namespaces' ? DELETABLE_NS : SCRATCH_NAMES })),
  },
);

const contentTypes = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/yaml',
      'application/vnd.kubernetes.protobuf',
      'text/plain',
      '',
      'application/json; charset=utf-16',
      'application/merge-patch+json',
      'application/json-patch+json',
      'application/strategic-merge-patch+json',
      'application/apply-patch+yaml',
      'multipart/form-data; boundary=x',
      'application/json;;;',
      'application/x-www-form-urlencoded',
    ),
  },
);

const accepts = fc.oneof(
  { weight: 5, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json;as=Table;v=v1;g=meta.k8s.io',
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
      'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
      'application/vnd.kubernetes.protobuf',
      '*/*',
      'text/html',
      'as=Table',
      '',
    ),
  },
);

const headersArb: fc.Arbitrary<(readonly [string, string])[]> = fc.tuple(accepts, fc.option(fc.constantFrom<[string, string]>(['user-agent', 'fuzz/1'], ['x-flotilla-log-forwarded', '1'], ['impersonate-user', 'admin'], ['x-forwarded-for', '10.0.0.1'], ['accept-encoding', 'gzip'], ['expect', '100-continue'], ['connection', 'close'], ['x-flotilla-auth', 'v1.m1.0.x.y']), { nil: undefined })).map(([accept, extra]) => [['accept', accept] as const, ...(extra === undefined ? [] : [extra])]);

/** Query values that mean something, and odd ones. */
function queryValue(key: string): fc.Arbitrary<Str> {
  switch (key) {
    case 'limit':
      return fc.constantFrom('0', '1', '2', '500', '-1', '1e3', 'x', '9007199254740993', '');
    case 'resourceVersion':
      return fc.constantFrom('', '0', '1', '{{RV}}', '99999999999', '-1', 'x', '1.5');
    case 'resourceVersionMatch':
      return fc.constantFrom('NotOlderThan', 'Exact', 'x', '');
    case 'continue':
      return fc.oneof(fc.constantFrom('', 'x', 'eyJ9', 'eyJydiI6MX0', Buffer.from('{"rv":1,"start":"/registry/"}').toString('base64'), Buffer.from('{"rv":"x","start":{}}').toString('base64url')), fc.string({ maxLength: 30 }));
    case 'watch':
    case 'allowWatchBookmarks':
    case 'follow':
    case 'previous':
    case 'timestamps':
    case 'orphanDependents':
      return fc.constantFrom('true', 'false', '1', '0', 'yes', '');
    case 'timeoutSeconds':
    case 'gracePeriodSeconds':
    case 'tailLines':
    case 'limitBytes':
    case 'sinceSeconds':
      return fc.constantFrom('0', '1', '2', '-1', '30', 'x', '1e20', '9007199254740993');
    case 'sinceTime':
      return fc.constantFrom('2020-01-01T00:00:00Z', 'x', '9999-99-99T', '');
    case 'dryRun':
      return fc.constantFrom('All', 'all', 'x', '');
    case 'propagationPolicy':
      return fc.constantFrom('Foreground', 'Background', 'Orphan', 'x');
    case 'labelSelector':
      return fc.oneof(fc.constantFrom('app=fz', 'app!=fz', 'app in (fz,x)', 'app notin (x)', 'app', '!app', 'a=b,c=d', '', '=', 'a in (', 'a==b', 'toString', '__proto__', 'constructor=x'), oddString);
    case 'fieldSelector':
      return fc.oneof(fc.constantFrom('metadata.name=s-0', 'metadata.namespace=fz-s0', 'spec.nodeName=', 'status.phase=Pending', 'metadata.name!=x', 'x=y', '', '=', 'metadata.name', 'spec.nodeName={{NODE}}'), oddString);
    case 'container':
      return fc.constantFrom('main', 'x', '', '../..');
    default:
      return oddString;
  }
}

const QUERY_KEYS = ['labelSelector', 'fieldSelector', 'limit', 'continue', 'resourceVersion', 'resourceVersionMatch', 'watch', 'timeoutSeconds', 'allowWatchBookmarks', 'dryRun', 'fieldManager', 'fieldValidation', 'pretty', 'propagationPolicy', 'gracePeriodSeconds', 'orphanDependents'] as const;

const queryArb: fc.Arbitrary<(readonly [string, Str])[]> = fc.array(
  fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...QUERY_KEYS) }, { weight: 1, arbitrary: keyArb }).chain((k) => queryValue(k).map((v) => [k, v] as const)),
  { maxLength: 4 },
);

/** A plausible object of the kind, sometimes broken in a few places. */
function objectBody(k: Kind, name: string, ns: string | undefined): fc.Arbitrary<unknown> {
  return fc.tuple(fc.array(mutation, { maxLength: 3 }), fc.boolean(), fc.integer({ min: 0, max: 9 })).map(([ms, keepNs, r]) => {
    const base = template(k, name, keepNs ? ns : undefined);
    return r < 4 ? base : mutate(base, ms);
  });
}

/** Patches of the three kinds (and unsupported ones). */
function patchOf(k: Kind): fc.Arbitrary<{ ct: string; body: unknown }> {
  const pointer = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('/metadata/labels/a', '/metadata/labels', '/metadata/annotations', '/metadata/annotations/x', '/spec', '/spec/holderIdentity', '/spec/ports/0', '/spec/ports/-', '/spec/containers/0', '/spec/containers/-', '/metadata/finalizers/-', '/metadata/name', '/metadata/resourceVersion', '/status', '/kind') },
    { weight: 2, arbitrary: fc.constantFrom('', '/', '/~1', '/~0', '/~2', '/__proto__/x', '/constructor/prototype/x', '/metadata/labels/__proto__', '/a/b/c', '/spec/ports/99', '/spec/ports/-1', '/spec/ports/01', '/spec/ports/1e0', 'metadata', '//', '/metadata/labels/') },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
  const op = fc.record({
    op: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test') }, { weight: 1, arbitrary: fc.constantFrom('bogus', 'ADD', '', '__proto__') }),
    path: pointer,
    from: fc.option(pointer, { nil: undefined }),
    value: fc.option(fieldValue, { nil: undefined }),
  });
  const json = fc.oneof({ weight: 6, arbitrary: fc.array(op, { maxLength: 6 }) }, { weight: 1, arbitrary: leaf }, { weight: 1, arbitrary: fc.array(leaf, { maxLength: 3 }) });
  const mergeDoc = fc.oneof(
    { weight: 3, arbitrary: fc.array(mutation, { maxLength: 3 }).map((ms) => mutate({ metadata: { labels: { fuzz: 'yes' } } }, ms)) },
    { weight: 1, arbitrary: tree },
  );
  const strategic = fc.oneof(
    { weight: 2, arbitrary: mergeDoc },
    {
      weight: 2,
      arbitrary: fc.constantFrom<unknown>(
        { $patch: 'replace', spec: {} },
        { $patch: 'delete' },
        { spec: { $patch: 'replace' } },
        { spec: { ports: [{ port: 80, $patch: 'delete' }] } },
        { spec: { containers: [{ name: 'main', $patch: 'replace' }] } },
        { metadata: { $retainKeys: ['name'] } },
        { metadata: { $retainKeys: 'x' } },
        { $retainKeys: [] },
        { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } },
        { '$setElementOrder/containers': [{ name: 'main' }] },
        { spec: { ports: [1, 'x', null] } },
        { metadata: { finalizers: ['fz.io/x', 'fz.io/x'] } },
      ),
    },
  );
  void k;
  return fc.oneof(
    { weight: 3, arbitrary: mergeDoc.map((body) => ({ ct: 'application/merge-patch+json', body })) },
    { weight: 3, arbitrary: strategic.map((body) => ({ ct: 'application/strategic-merge-patch+json', body })) },
    { weight: 4, arbitrary: json.map((body) => ({ ct: 'application/json-patch+json', body })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('application/apply-patch+yaml', 'application/json', '', 'text/plain', 'application/merge-patch+json; charset=utf-8'), tree).map(([ct, body]) => ({ ct, body })) },
  );
}

const deleteOptionsBody = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        propagationPolicy: fc.option(fc.constantFrom('Foreground', 'Background', 'Orphan', 'x', 1), { nil: undefined }),
        gracePeriodSeconds: fc.option(fc.constantFrom(0, 30, -1, 'x', 1e20, null), { nil: undefined }),
        preconditions: fc.option(fc.oneof(fc.record({ uid: fc.constantFrom('x', '00000000-0000-0000-0000-000000000000') }), fc.record({ resourceVersion: fc.constantFrom('1', '{{RV}}', 'x') }), leaf), { nil: undefined }),
        dryRun: fc.option(fc.constantFrom(['All'], ['x'], 'All', [1]), { nil: undefined }),
        orphanDependents: fc.option(fc.boolean(), { nil: undefined }),
      })
      .map((o) => JSON.parse(JSON.stringify(o)) as unknown),
  },
  { weight: 1, arbitrary: tree },
);

/** Ordinary verbs on ordinary paths, with bodies that are sometimes wrong. */
const crud: fc.Arbitrary<HttpReq> = fc
  .tuple(placed, fc.nat(), credArb, masterArb, queryArb, headersArb, fc.integer({ min: 0, max: 99 }), contentTypes)
  .chain(([{ k, ns, names }, pick, cred, master, query, headers, verbRoll, ct]) => {
    const name = names[pick % names.length]!;
    const subs = k.subresources.filter((s) => s === 'status' || s === 'scale');
    const base = { family: 'crud' as const, cred, master };
    const hs = (extra: [string, string][] = []): (readonly [string, string])[] => [...headers, ...extra];
    if (verbRoll < 15) return fc.constant<HttpReq>({ ...base, method: 'GET', path: pathOf(k, ns, name), query, headers: hs() });
    if (verbRoll < 28) return fc.constant<HttpReq>({ ...base, method: 'GET', path: pathOf(k, ns), query, headers: hs() });
    if (verbRoll < 33) return fc.constant<HttpReq>({ ...base, method: 'GET', path: pathOf(k, undefined), query, headers: hs() });
    if (verbRoll < 50)
      return objectBody(k, name, ns).map<HttpReq>((json) => ({ ...base, method: 'POST', path: pathOf(k, ns), query, headers: hs([['content-type', ct]]), body: { json } }));
    if (verbRoll < 63)
      return fc.tuple(objectBody(k, name, ns), fc.constantFrom(undefined, ...subs), fc.constantFrom(undefined, '{{RV}}', '1', 'x')).map<HttpReq>(([json, sub, rv]) => {
        const body = rv === undefined || typeof json !== 'object' || json === null ? json : mutate(json, [{ path: ['metadata', 'resourceVersion'], value: rv }]);
        return { ...base, method: 'PUT', path: pathOf(k, ns, name, sub), query, headers: hs([['content-type', ct]]), body: { json: body } };
      });
    if (verbRoll < 83)
      return fc.tuple(patchOf(k), fc.constantFrom(undefined, undefined, ...subs)).map<HttpReq>(([p, sub]) => ({ ...base, method: 'PATCH', path: pathOf(k, ns, sub === 'scale' ? name : name, sub), query, headers: hs([['content-type', p.ct]]), body: { json: p.body } }));
    if (verbRoll < 95) {
      // Objects named KEEP stay (patches of them are compared with the model); namespaces of the model are never deleted.
      const victim = name === KEEP ? names[0]! : name;
      return deleteOptionsBody.map<HttpReq>((json) => ({ ...base, method: 'DELETE', path: pathOf(k, ns, victim), query, headers: hs(json === undefined ? [] : [['content-type', 'application/json']]), ...(json === undefined ? {} : { body: { json } }) }));
    }
    // deletecollection: only inside one namespace (never every namespace, never the namespaces themselves)
    if (!k.namespaced || ns === undefined) return fc.constant<HttpReq>({ ...base, method: 'GET', path: pathOf(k, ns), query, headers: hs() });
    return fc.constant<HttpReq>({ ...base, method: 'DELETE', path: pathOf(k, ns), query, headers: hs() });
  });

/** Selectors that are long and adversarial: what a parser with a backtracking regex or a quadratic loop cannot take. */
export const fieldSelectorBomb: fc.Arbitrary<Rep> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 4000, max: 15_800 }).map((n) => new Rep(' ', n, 'metadata.name=a', 'b')) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 15_800 }).map((n) => new Rep('\t', n, 'metadata.name=a', 'b')) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 15_800 }).map((n) => new Rep(' ', n, '', 'metadata.name=a')) },
  { weight: 1, arbitrary: fc.integer({ min: 500, max: 3900 }).map((n) => new Rep('a=b,', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 500, max: 3000 }).map((n) => new Rep('metadata.name!=a,', n, '', 'metadata.name=b')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => new Rep(',', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => new Rep('=', n, 'metadata.name')) },
);

export const labelSelectorBomb: fc.Arbitrary<Rep> = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 500, max: 3900 }).map((n) => new Rep('a=b,', n, '', 'a=b')) },
  { weight: 2, arbitrary: fc.integer({ min: 1000, max: 7900 }).map((n) => new Rep('a,', n, '', 'a')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 7000 }).map((n) => new Rep('x,', n, 'a in (', 'x)')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 5000 }).map((n) => new Rep('!a,', n, '', '!a')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => new Rep('a', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => new Rep(' ', n, 'a=b', 'c')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => new Rep('(', n, 'a in ')) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 1300 }).map((n) => new Rep('a notin (b),', n, '', 'a')) },
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 70_000 }).map((n) => new Rep('a=b,', n >> 2, '', 'a=b')) },
);

const selectorBomb: fc.Arbitrary<HttpReq> = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom(undefined, ...SCRATCH_NS, ...MODEL_NS), fc.oneof(fieldSelectorBomb.map((v) => ['fieldSelector', v] as const), labelSelectorBomb.map((v) => ['labelSelector', v] as const)), credArb, masterArb, fc.integer({ min: 0, max: 9 }))
  .map<HttpReq>(([k, ns, sel, cred, master, mode]) => ({
    family: 'selector-bomb',
    cred,
    master,
    method: mode === 9 ? 'DELETE' : 'GET',
    // deletecollection with a selector only in a scratch namespace
    path: pathOf(k, mode === 9 ? (k.namespaced ? 'fz-s1' : undefined) : k.namespaced ? ns : undefined),
    query: mode >= 7 && mode < 9 ? [sel, ['watch', 'true']] : [sel],
    headers: [['accept', mode === 6 ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json']],
    ...(mode >= 7 && mode < 9 ? { holdMs: 300 } : {}),
  }))
  .filter((r) => !(r.method === 'DELETE' && (r.path as string).indexOf('/namespaces/fz-s1/') < 0));

/** Path segments that decoding, routing or normalizing may trip on. */
const oddSegment: fc.Arbitrary<Str> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('%', '%%', '%G1', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%FF%FE', '%E2%82', '%F0%9F%98', '%0', '%u0041', '%E0%A4', '%c3%28', '%f8%88%80%80%80', 'a%', '%%32%65') },
  { weight: 2, arbitrary: fc.constantFrom('%2F', '%2E%2E', '..', '.', '%00', '%20', '%0A', '%2e', '~', '%7E', ';', ';x=y', '%3B', 'a;b', '%3F', '%23', '*', ':', '@') },
  { weight: 1, arbitrary: fc.integer({ min: 2000, max: 15_000 }).map((n) => new Rep('a', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 500, max: 5000 }).map((n) => new Rep('%41', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 8000 }).map((n) => new Rep('/', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => new Rep('../', n)) },
  { weight: 1, arbitrary: fc.constantFrom('%70ods', 'p%6Fds', '%73ervices', 'POD', 'Pods', 'pods%00', 'pods ', 'pods.') },
);

const basePaths = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...KINDS), fc.constantFrom(...SCRATCH_NS), fc.constantFrom<string | undefined>(undefined, 's-0', KEEP), fc.constantFrom<string | undefined>(undefined, undefined, 'status', 'scale', 'log', 'binding', 'x')).map(([k, ns, name, sub]) => pathOf(k, ns, name, name === undefined ? undefined : sub)) },
  { weight: 2, arbitrary: fc.constantFrom('/', '/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/apis/coordination.k8s.io/v1', '/openapi/v3', '/openapi/v3/api/v1', '/openapi/v3/apis/apps/v1', '/version', '/healthz', '/readyz', '/livez', '/ui', '/ui/app.js', '/flotilla/v1/cluster', '/flotilla/v1/join', '/flotilla/v1/agent', '/api/v1/watch/pods', '/api/v1/watch/namespaces/fz-s0/pods') },
);

const oddPath: fc.Arbitrary<HttpReq> = fc
  .tuple(basePaths, fc.array(fc.tuple(fc.nat(), oddSegment, fc.constantFrom('replace', 'insert', 'append', 'prefix')), { minLength: 1, maxLength: 2 }), credArb, masterArb, fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'TRACE'), fc.option(tree, { nil: undefined }), queryArb)
  .map(([path, edits, cred, master, method, body, query]) => {
    let segs: Str[] = path.split('/').slice(1);
    for (const [at, seg, how] of edits) {
      const i = segs.length === 0 ? 0 : at % segs.length;
      if (how === 'replace' && segs.length > 0) segs[i] = seg;
      else if (how === 'insert') segs.splice(i, 0, seg);
      else if (how === 'append') segs.push(seg);
      else segs = segs.length === 0 ? [seg] : [typeof seg === 'string' ? `${seg}${segs[0] as string}` : seg, ...segs.slice(1)];
    }
    const long = segs.find((s) => typeof s !== 'string') as Rep | undefined;
    const text = long === undefined ? `/${segs.join('/')}` : new Rep(long.unit, long.n, `/${segs.slice(0, segs.indexOf(long)).join('/')}${segs.indexOf(long) > 0 ? '/' : ''}${long.pre}`, `${long.post}${segs.indexOf(long) < segs.length - 1 ? '/' : ''}${segs.slice(segs.indexOf(long) + 1).join('/')}`);
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    return {
      family: 'odd-path' as const,
      cred,
      master,
      method,
      path: text,
      query,
      headers: hasBody ? [['content-type', method === 'PATCH' ? 'application/merge-patch+json' : 'application/json']] : [],
      ...(hasBody ? { body: { json: body ?? { metadata: { name: 's-1' } } } } : {}),
    };
  });

/** Requests only a raw socket sends: absolute-form targets, malformed lines and headers. */
const rawReq: fc.Arbitrary<HttpReq> = fc
  .tuple(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.constantFrom<RawSpec>(
          { line: 'GET http://{{SSRF}}/api/v1/namespaces/fz-s0/pods HTTP/1.1' },
          { line: 'GET https://{{SSRF}}/api HTTP/1.1' },
          { line: 'GET http://{{SSRF}}/version HTTP/1.1' },
          { line: 'POST http://{{SSRF}}/api/v1/namespaces/fz-s0/events HTTP/1.1', lines: ['content-type: application/json', 'content-length: 2'], tail: '{}' },
          { line: 'GET //{{SSRF}}/api HTTP/1.1' },
          { line: 'GET http://{{SSRF}} HTTP/1.1' },
          { line: 'CONNECT {{SSRF}} HTTP/1.1' },
          { line: 'GET  /api  HTTP/1.1' },
          { line: 'get /api HTTP/1.1' },
          { line: 'GET /api' },
          { line: 'GET /api HTTP/9.9' },
          { line: 'GET /api HTTP/1.0', noHost: true },
          { line: 'GET * HTTP/1.1' },
          { line: 'OPTIONS * HTTP/1.1' },
          { line: 'PRI * HTTP/2.0', tail: '\r\nSM\r\n\r\n' },
          { line: 'GET /api/v1/namespaces/fz-s0/pods/a b HTTP/1.1' },
          { line: 'GET /api/v1/namespaces/fz-s0/pods/\u0001 HTTP/1.1' },
          { line: 'GET /api/v1/namespaces/fz-s0/pods/\u00ff\u00fe HTTP/1.1' },
          { line: 'GET /api/v1/namespaces/fz-s0/pods/%E0%A4%A HTTP/1.1' },
          { line: 'GET /api/v1/namespaces/%ED%A0%80/pods HTTP/1.1' },
          { line: 'PROPFIND /api HTTP/1.1' },
          { line: 'DELETE /api/v1/namespaces/fz-s0/pods/s-0 HTTP/1.1', lines: ['content-length: 5', 'content-length: 7'] },
          { line: 'POST /api/v1/namespaces/fz-s0/pods HTTP/1.1', lines: ['transfer-encoding: chunked', 'content-length: 3'], tail: '0\r\n\r\n' },
          { line: 'POST /api/v1/namespaces/fz-s0/pods HTTP/1.1', lines: ['transfer-encoding: chunked', 'content-type: application/json'], tail: 'zz\r\n{}\r\n0\r\n\r\n' },
          { line: 'POST /api/v1/namespaces/fz-s0/pods HTTP/1.1', lines: ['transfer-encoding: chunked', 'content-type: application/json'], tail: 'FFFFFFFFFFFFFFFFF\r\n{}\r\n' },
          { line: 'POST /api/v1/namespaces/fz-s0/pods HTTP/1.1', lines: ['transfer-encoding: chunked, identity', 'content-type: application/json'], tail: '2\r\n{}\r\n0\r\n\r\n' },
          { line: 'GET /api HTTP/1.1', lines: ['no colon here'] },
          { line: 'GET /api HTTP/1.1', lines: ['bad name: x'] },
          { line: 'GET /api HTTP/1.1', lines: ['x-a: \u0000'] },
          { line: 'GET /api HTTP/1.1', lines: ['authorization: Bearer'] },
          { line: 'GET /api/v1/pods HTTP/1.1', lines: ['authorization: bearer test-admin-token-0123456789'] },
          { line: 'GET /api/v1/pods HTTP/1.1', lines: ['authorization: Bearer test-viewer-token-0123456789', 'authorization: Bearer test-admin-token-0123456789'] },
          { line: 'GET /api HTTP/1.1', lines: [' folded: header'] },
          { line: 'GET /flotilla/v1/agent HTTP/1.1', lines: ['upgrade: websocket', 'connection: upgrade', 'sec-websocket-key: x', 'sec-websocket-version: 13'] },
          { line: 'GET /api/v1/pods HTTP/1.1', lines: ['upgrade: websocket', 'connection: upgrade', 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version: 13'] },
          { line: 'GET /flotilla/v1/agent HTTP/1.1', lines: ['upgrade: websocket', 'connection: upgrade', 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version: 99'] },
          { line: 'GET /api HTTP/1.1', lines: ['expect: 100-continue'] },
          { line: 'GET /api HTTP/1.1\r\n\r\nGET /version HTTP/1.1' },
        ),
      },
      { weight: 1, arbitrary: fc.integer({ min: 8000, max: 40_000 }).map<RawSpec>((n) => ({ line: 'GET /api HTTP/1.1', lines: [new Rep('a', n, 'x-long: ')] })) },
      { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map<RawSpec>((n) => ({ line: 'GET /api HTTP/1.1', lines: [new Rep('x-h: 1\r\n', n, '', 'x-end: 1')] })) },
      { weight: 1, arbitrary: fc.integer({ min: 8000, max: 40_000 }).map<RawSpec>((n) => ({ line: new Rep('a', n, 'GET /api/v1/namespaces/fz-s0/pods?x=', ' HTTP/1.1') })) },
    ),
    credArb,
    masterArb,
  )
  .map(([raw, cred, master]) => ({ family: 'raw', cred, master, method: 'GET', path: '/', query: [], headers: [], raw }));

/** Log requests; the absolute-form ones are what made the forwarder dial any address (SSRF). */
const logAbsolute: fc.Arbitrary<HttpReq> = fc
  .tuple(
    fc.constantFrom('http://{{SSRF}}', 'https://{{SSRF}}', 'http://localhost:{{SSRF_PORT}}', 'http://{{SSRF}}/x/..', '//{{SSRF}}', 'http://user:pw@{{SSRF}}'),
    fc.constantFrom(`/api/v1/namespaces/${LOG_NS}/pods/${GHOST_POD}/log`, `/api/v1/namespaces/${LOG_NS}/pods/${GHOST_POD}/log?follow=true`, `/api/v1/namespaces/${LOG_NS}/pods/${GHOST_POD}/log?container=main&tailLines=1`, `/api/v1/namespaces/${LOG_NS}/pods/${AGENT_POD}/log`),
    fc.oneof({ weight: 6, arbitrary: fc.constant<Cred>('admin') }, { weight: 2, arbitrary: fc.constant<Cred>('viewer') }, { weight: 1, arbitrary: credArb }),
    masterArb,
    fc.boolean(),
  )
  .map(([origin, path, cred, master, forwarded]) => ({ family: 'log-absolute', cred, master, method: 'GET', path: '/', query: [], headers: [], raw: { line: `GET ${origin}${path} HTTP/1.1`, ...(forwarded ? { lines: ['x-flotilla-log-forwarded: 1'] } : {}) }, holdMs: 200 }));

const logReq: fc.Arbitrary<HttpReq> = fc
  .tuple(fc.constantFrom(GHOST_POD, AGENT_POD, 's-0', 'nope'), fc.constantFrom(LOG_NS, 'fz-s0'), fc.array(fc.constantFrom('follow', 'previous', 'container', 'tailLines', 'limitBytes', 'sinceSeconds', 'sinceTime', 'timestamps').chain((k) => queryValue(k).map((v) => [k, v] as const)), { maxLength: 3 }), credArb, masterArb)
  .map(([pod, ns, query, cred, master]) => ({ family: 'log', cred, master, method: 'GET', path: `/api/v1/namespaces/${ns}/pods/${pod}/log`, query, headers: [], holdMs: 300 }));

/** JSON patches whose copies double the document each step (a heap bomb), and other amplifiers. */
const jsonPatchBomb: fc.Arbitrary<HttpReq> = fc
  .tuple(
    fc.constantFrom(...MODEL_KINDS),
    fc.constantFrom(...MODEL_NS),
    fc.integer({ min: 12, max: 40 }),
    fc.integer({ min: 64, max: 4096 }),
    fc.constantFrom('append', 'root', 'sibling', 'metadata'),
    credArb.filter((c) => c !== 'none'),
    masterArb,
  )
  .map(([k, ns, copies, seedBytes, shape, cred, master]) => {
    const ops: unknown[] = [];
    if (shape === 'append') {
      ops.push({ op: 'add', path: '/spec/x', value: [new Rep('A', seedBytes)] });
      for (let i = 0; i < copies; i++) ops.push({ op: 'copy', from: '/spec/x', path: '/spec/x/-' });
    } else if (shape === 'root') {
      ops.push({ op: 'add', path: '/spec/x', value: new Rep('A', seedBytes) });
      for (let i = 0; i < copies; i++) ops.push({ op: 'copy', from: '', path: `/spec/c${i}` });
    } else if (shape === 'sibling') {
      ops.push({ op: 'add', path: '/spec/a0', value: { v: new Rep('A', seedBytes) } });
      for (let i = 0; i < copies; i++) ops.push({ op: 'copy', from: '/spec', path: `/spec/a${i + 1}` });
    } else {
      ops.push({ op: 'add', path: '/metadata/annotations', value: { a: new Rep('A', seedBytes) } });
      for (let i = 0; i < copies; i++) ops.push({ op: 'copy', from: '/metadata', path: `/metadata/annotations/c${i}` });
    }
    return { family: 'json-patch-bomb', cred, master, method: 'PATCH', path: pathOf(k, ns, KEEP), query: [], headers: [['content-type', 'application/json-patch+json']], body: { json: ops } };
  });

/** Bodies that are huge, deep, wide, not UTF-8, or JavaScript's special keys. */
const bodyBomb: fc.Arbitrary<HttpReq> = fc
  .tuple(
    fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...MODEL_KINDS).map((k) => ({ k, ns: MODEL_NS[0] as string, names: MODEL_NAMES as readonly string[] })) }, { weight: 2, arbitrary: placed }),
    fc.oneof(
      { weight: 2, arbitrary: fc.integer({ min: 2_000_000, max: 3_140_000 }).map<{ shape: string; n: number }>((n) => ({ shape: 'big', n })) },
      { weight: 1, arbitrary: fc.integer({ min: 3_146_000, max: 4_000_000 }).map((n) => ({ shape: 'big', n })) },
      { weight: 2, arbitrary: fc.integer({ min: 3_146_000, max: 50_000_000 }).map((n) => ({ shape: 'declared', n })) },
      { weight: 1, arbitrary: fc.integer({ min: 3_146_000, max: 3_500_000 }).map((n) => ({ shape: 'chunked-big', n })) },
      { weight: 6, arbitrary: nest.map((x) => ({ shape: 'nest', n: x.depth, x })) },
      { weight: 2, arbitrary: fc.integer({ min: 1000, max: 150_000 }).map((n) => ({ shape: 'keys', n })) },
      { weight: 6, arbitrary: fc.constantFrom('proto-top', 'proto-labels', 'proto-deep', 'constructor', 'bom', 'utf16', 'badutf8', 'nul', 'surrogate', 'bignum', 'dupkeys', 'toplevel-array', 'toplevel-string', 'toplevel-null', 'trailing', 'empty').map((shape) => ({ shape, n: 0 })) },
    ),
    fc.constantFrom('POST', 'POST', 'PUT', 'PATCH'),
    credArb,
    masterArb,
    fc.integer({ min: 1, max: 1 << 30 }),
  )
  .map(([{ k, ns, names }, s, method, cred, master, seed]) => {
    const name = names[seed % names.length]!;
    const obj = template(k, name, ns);
    const objText = JSON.stringify(obj);
    const open = objText.slice(0, -1); // the object without its closing brace
    let body: BodySpec;
    switch (s.shape) {
      case 'big':
        body = { raw: new Rep('a', Math.max(0, s.n - objText.length - 20), `${open},"fuzz":"`, '"}') };
        break;
      case 'declared':
        body = { json: obj, lieLength: s.n };
        break;
      case 'chunked-big':
        body = { raw: new Rep('a', s.n, `${open},"fuzz":"`, '"}'), chunked: true };
        break;
      case 'nest':
        body = { raw: (s as { x: Nest }).x, pre: `${open},"fuzz":`, post: '}' };
        break;
      case 'keys':
        body = { raw: new ManyKeys(s.n), pre: `${open},"fuzz":`, post: '}' };
        break;
      case 'proto-top':
        body = { raw: `{"__proto__":{"polluted":true},${objText.slice(1)}` };
        break;
      case 'proto-labels':
        body = { json: mutate(obj, [{ path: ['metadata', 'labels', '__proto__'], value: { polluted: 'yes' } }]) };
        break;
      case 'proto-deep':
        body = { json: mutate(obj, [{ path: ['spec', 'x', '0', 'y', '__proto__'], value: { polluted: 'yes' } }]) };
        break;
      case 'constructor':
        body = { json: mutate(obj, [{ path: ['metadata', 'labels', 'constructor'], value: { prototype: { polluted: 'yes' } } }, { path: ['metadata', 'annotations', 'toString'], value: 'x' }]) };
        break;
      case 'bom':
        body = { raw: `\ufeff${objText}` };
        break;
      case 'utf16':
        body = { raw: new Bytes(0, 0), pre: Buffer.from(objText, 'utf16le').toString('latin1') };
        break;
      case 'badutf8':
        body = { raw: new Bytes(64, seed), pre: `${open},"fuzz":"`, post: '"}' };
        break;
      case 'nul':
        body = { raw: `${open},"fuzz":"\\u0000\u0000"}` };
        break;
      case 'surrogate':
        body = { raw: `${open},"fuzz":"\\ud800\\udfff\\udc00"}` };
        break;
      case 'bignum':
        body = { raw: `${open},"fuzz":[1e999,-1e999,123456789012345678901234567890,-0,0.1e-400]}` };
        break;
      case 'dupkeys':
        body = { raw: `${open},"metadata":{"name":"${name}","name":"x"},"kind":"Pod"}` };
        break;
      case 'toplevel-array':
        body = { raw: '[1,2,3]' };
        break;
      case 'toplevel-string':
        body = { raw: '"x"' };
        break;
      case 'toplevel-null':
        body = { raw: 'null' };
        break;
      case 'trailing':
        body = { raw: `${objText} {}` };
        break;
      default:
        body = { raw: '' };
    }
    const path = method === 'POST' ? pathOf(k, ns) : pathOf(k, ns, name);
    const ct = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    return { family: 'body-bomb', cred, master, method, path, query: [], headers: [['content-type', ct]], body };
  });

const watchMany: fc.Arbitrary<HttpReq> = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom(undefined, ...SCRATCH_NS, ...MODEL_NS, 'kube-node-lease'), fc.integer({ min: 5, max: 25 }), fc.constantFrom('', '0', '1', '{{RV}}', '99999999999', 'x'), fc.constantFrom(undefined, 'true', 'false'), fc.constantFrom(undefined, '0', '1', '-1', 'x'), fc.boolean(), credArb, masterArb, fc.integer({ min: 200, max: 1500 }))
  .map(([k, ns, fanout, rv, bookmarks, timeout, legacy, cred, master, holdMs]) => {
    const q: [string, Str][] = [];
    if (!legacy) q.push(['watch', 'true']);
    if (rv !== '') q.push(['resourceVersion', rv]);
    if (bookmarks !== undefined) q.push(['allowWatchBookmarks', bookmarks]);
    if (timeout !== undefined) q.push(['timeoutSeconds', timeout]);
    const path = pathOf(k, k.namespaced ? ns : undefined);
    return { family: 'watch-many', cred, master, method: 'GET', path: legacy ? path.replace(/^(\/api\/v1|\/apis\/[^/]+\/[^/]+)/, '$1/watch') : path, query: q, headers: [], holdMs, fanout };
  });

const misc: fc.Arbitrary<HttpReq> = fc
  .tuple(
    fc.constantFrom('/api', '/apis', '/api/v1', '/apis/apps/v1', '/apis/x/v1', '/openapi/v3', '/openapi/v3/api/v1', '/openapi/v3/x', '/version', '/healthz', '/readyz', '/livez', '/ui', '/ui/index.html', '/ui/../../etc/passwd', '/ui/%2e%2e/x', '/flotilla/v1/cluster', '/flotilla/v1/cluster/transfer', '/flotilla/v1/join', '/metrics', '/debug/pprof'),
    fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'),
    fc.oneof(
      { weight: 3, arbitrary: tree },
      { weight: 2, arbitrary: fc.record({ to: fc.constantFrom('m9', '', 'x'.repeat(300), 'fz-node', '__proto__') }) },
      { weight: 2, arbitrary: fc.record({ nodeName: fc.oneof(fc.constantFrom('fz-j0', 'fz-j1', '', 'A', 'a'.repeat(300), '__proto__'), oddString) }) },
    ),
    fc.oneof({ weight: 4, arbitrary: credArb }, { weight: 2, arbitrary: fc.constant<Cred>('none') }),
    fc.boolean(),
    masterArb,
    queryArb,
  )
  .map(([path, method, body, cred, joinToken, master, query]) => {
    const hasBody = method === 'POST' || method === 'PUT';
    // Leadership transfers to real masters are an admin's right and not an attack: only bogus targets.
    return {
      family: 'misc',
      cred,
      master,
      method,
      path,
      query: path === '/healthz' || path === '/readyz' ? [['verbose', ''] as const, ...query] : query,
      headers: [...(hasBody ? [['content-type', 'application/json'] as const] : []), ...(path === '/flotilla/v1/join' && joinToken ? [['x-use-join-token', '1'] as const] : [])],
      ...(hasBody ? { body: { json: body } } : {}),
    };
  });

/** Valid writes to the modelled kinds, so the store comparison has much to compare. */
const modelWrites: fc.Arbitrary<HttpReq> = fc
  .tuple(fc.constantFrom(...MODEL_KINDS), fc.constantFrom(...MODEL_NS), fc.constantFrom(...MODEL_NAMES), fc.integer({ min: 0, max: 99 }), masterArb, fc.string({ unit: 'grapheme-ascii', maxLength: 12 }), fc.constantFrom('', '{{RV}}'))
  .map(([k, ns, name, roll, master, text, rv]) => {
    const label = text.replace(/[^A-Za-z0-9]/g, '') || 'v';
    const base = { family: 'model' as const, cred: 'admin' as const, master, query: [] as (readonly [string, Str])[] };
    const obj = template(k, name, ns);
    const withLabel = mutate(obj, [{ path: ['metadata', 'labels', 'fz'], value: label }, ...(rv === '' ? [] : [{ path: ['metadata', 'resourceVersion'], value: rv }])]);
    if (roll < 30) return { ...base, method: 'POST', path: pathOf(k, ns), headers: [['content-type', 'application/json']], body: { json: mutate(obj, [{ path: ['metadata', 'labels', 'fz'], value: label }]) } };
    if (roll < 50) return { ...base, method: 'PUT', path: pathOf(k, ns, name), headers: [['content-type', 'application/json']], body: { json: withLabel } };
    if (roll < 65) return { ...base, method: 'PATCH', path: pathOf(k, ns, name), headers: [['content-type', 'application/merge-patch+json']], body: { json: { metadata: { labels: { fz: label, drop: roll % 2 === 0 ? null : 'x' } } } } };
    if (roll < 75) return { ...base, method: 'PATCH', path: pathOf(k, ns, name), headers: [['content-type', 'application/strategic-merge-patch+json']], body: { json: { metadata: { annotations: { note: label } } } } };
    if (roll < 85)
      return { ...base, method: 'PATCH', path: pathOf(k, ns, name), headers: [['content-type', 'application/json-patch+json']], body: { json: k.kind === 'Lease' ? [{ op: 'replace', path: '/spec/holderIdentity', value: label }] : [{ op: 'add', path: '/metadata/labels/jp', value: label }] } };
    if (roll < 88 && k.kind === 'Service') return { ...base, method: 'PUT', path: pathOf(k, ns, name, 'status'), headers: [['content-type', 'application/json']], body: { json: { ...withLabel as object, status: { loadBalancer: { ingress: [{ ip: '127.0.0.9' }] } } } } };
    return { ...base, method: 'DELETE', path: pathOf(k, ns, name === KEEP ? 'm-0' : name), headers: [] };
  });

export const FAMILY_WEIGHTS: Record<HttpFamily, number> = {
  model: 10,
  crud: 30,
  'selector-bomb': 7,
  'odd-path': 10,
  raw: 6,
  'log-absolute': 5,
  log: 3,
  'json-patch-bomb': 4,
  'body-bomb': 8,
  'watch-many': 3,
  misc: 6,
};

const FAMILIES: Record<HttpFamily, fc.Arbitrary<HttpReq>> = {
  model: modelWrites,
  crud,
  'selector-bomb': selectorBomb,
  'odd-path': oddPath,
  raw: rawReq,
  'log-absolute': logAbsolute,
  log: logReq,
  'json-patch-bomb': jsonPatchBomb,
  'body-bomb': bodyBomb,
  'watch-many': watchMany,
  misc,
};

/** Every family, weighted (families can be left out, e.g. one already found crashing). */
export function httpRequest(weights: Partial<Record<HttpFamily, number>> = FAMILY_WEIGHTS): fc.Arbitrary<HttpReq> {
  const parts = (Object.keys(FAMILIES) as HttpFamily[]).filter((f) => (weights[f] ?? 0) > 0).map((f) => ({ weight: weights[f]!, arbitrary: FAMILIES[f] }));
  return fc.oneof(...parts);
}

export { ownObject };

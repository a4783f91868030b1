// Frames: the agent socket (/flotilla/v1/agent, node credential), the masters' peer port
// (/raft) and client port (/kv), valid and malformed.
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { Bytes, Nest, Rep } from './spec.ts';
import { Ext, Pairs, RawMsgpack, encode } from './msgpack.ts';
import { labelSelectorBomb, fieldSelectorBomb } from './gen-http.ts';
import { leaf, mutate, mutation, nest, oddNumber, oddString, tree } from './gen-values.ts';
import { BIG_NS, KINDS, MODEL_NS, NODE_NAME, SCRATCH_NS, pathOf, template } from './world.ts';

/** A frame that must be refused (the connection closed) or at least never hurt the master. */
export interface Malformed {
  readonly label: string;
  /** What goes out: a value for our msgpack writer, or bytes as they are, or text (a text frame). */
  readonly value?: unknown;
  readonly bytes?: Bytes | Uint8Array;
  readonly text?: string;
}

export type AgentAction =
  | { readonly type: 'req'; readonly master: number; readonly frame: Record<string, unknown> }
  | { readonly type: 'watch'; readonly master: number; readonly frame: Record<string, unknown>; readonly cancelAfterMs: number }
  | { readonly type: 'malformed'; readonly master: number; readonly m: Malformed }
  | { readonly type: 'big-list'; readonly master: number; readonly count: number; readonly size: number; readonly listPath: string }
  | { readonly type: 'connect'; readonly master: number; readonly cred: 'admin' | 'viewer' | 'garbage' | 'none' | 'join' };

const masterArb = fc.integer({ min: 0, max: 2 });

/** What a node may do and what it may not, on every kind. */
const agentPath: fc.Arbitrary<{ method: string; path: string; body?: unknown }> = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom(undefined, ...SCRATCH_NS, MODEL_NS[0], 'kube-node-lease', BIG_NS), fc.constantFrom(undefined, 's-0', NODE_NAME, 'keep-0'), fc.constantFrom(undefined, undefined, 'status', 'log', 'scale', 'binding'), fc.integer({ min: 0, max: 99 }), fc.array(mutation, { maxLength: 2 }))
  .map(([k, ns, name, sub, roll, ms]) => {
    const n = k.namespaced ? (ns ?? 'fz-s0') : undefined;
    const obj = template(k, name ?? 's-1', n);
    const body = roll % 3 === 0 ? obj : mutate(obj, ms);
    if (roll < 40) return { method: 'GET', path: pathOf(k, roll < 20 ? n : undefined, roll < 10 ? name : undefined, roll < 10 ? sub : undefined) };
    if (roll < 60) return { method: 'POST', path: pathOf(k, n), body };
    if (roll < 75) return { method: 'PUT', path: pathOf(k, n, name ?? 's-0', sub), body };
    if (roll < 90) return { method: 'PATCH', path: pathOf(k, n, name ?? 's-0', sub), body: { metadata: { labels: { fz: 'agent' } } } };
    // a node may delete only pods bound to it; anything else must be refused
    return { method: 'DELETE', path: pathOf(k, n, name === 'keep-0' ? 's-0' : (name ?? 's-0')) };
  });

const agentQuery: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.record({ labelSelector: fc.constantFrom('app=fz', '', 'a in (b)') }, { requiredKeys: [] }) },
  // No URL length limit here: selectors of 64 KB and more.
  { weight: 2, arbitrary: fieldSelectorBomb.map((v) => ({ fieldSelector: v })) },
  { weight: 3, arbitrary: fc.integer({ min: 30_000, max: 70_000 }).map((n) => ({ fieldSelector: new Rep(' ', n, 'metadata.name=a', 'b') })) },
  { weight: 2, arbitrary: fc.oneof(labelSelectorBomb, fc.integer({ min: 5000, max: 20_000 }).map((n) => new Rep('a=b,', n, '', 'a=b'))).map((v) => ({ labelSelector: v })) },
  { weight: 1, arbitrary: fc.record({ limit: fc.oneof(oddNumber, oddString), continue: oddString }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(leaf, fc.array(leaf, { maxLength: 3 })), { maxKeys: 3 }) },
  { weight: 1, arbitrary: leaf },
);

const reqFrame: fc.Arbitrary<AgentAction> = fc
  .tuple(agentPath, agentQuery, fc.option(fc.constantFrom('application/merge-patch+json', 'application/json-patch+json', 'application/strategic-merge-patch+json', 'x', 1), { nil: undefined }), fc.option(fc.oneof(tree, nest), { nil: undefined }), fc.integer({ min: 0, max: 9 }), masterArb)
  .map(([p, query, contentType, oddBody, roll, master]) => {
    const frame: Record<string, unknown> = { t: 'req', method: p.method, path: p.path };
    if (query !== undefined) frame['query'] = query;
    if (contentType !== undefined) frame['contentType'] = contentType;
    if (roll < 6 && p.body !== undefined) frame['body'] = p.body;
    else if (oddBody !== undefined && p.method !== 'GET') frame['body'] = oddBody;
    if (roll === 9) frame['method'] = oddBody === undefined ? 'HEAD' : 'get';
    if (roll === 8) frame['path'] = `${p.path}?watch=1`;
    return { type: 'req', master, frame };
  });

const watchFrame: fc.Arbitrary<AgentAction> = fc
  .tuple(fc.constantFrom(...KINDS), fc.constantFrom(undefined, ...SCRATCH_NS, 'kube-node-lease'), fc.constantFrom(undefined, '0', '1', '{{RV}}', 'x', 99999999999), agentQuery, fc.integer({ min: 50, max: 3000 }), masterArb, fc.boolean())
  .map(([k, ns, rv, q, cancelAfterMs, master, legacy]) => {
    const path = pathOf(k, k.namespaced ? ns : undefined);
    const query: Record<string, unknown> = { ...(typeof q === 'object' && q !== null ? q : {}), ...(legacy ? {} : { watch: 'true' }), ...(rv === undefined ? {} : { resourceVersion: rv }) };
    return { type: 'watch', master, frame: { t: 'watch', path: legacy ? path.replace(/^(\/api\/v1|\/apis\/[^/]+\/[^/]+)/, '$1/watch') : path, query }, cancelAfterMs };
  });

const ext: fc.Arbitrary<Ext> = fc.tuple(fc.oneof(fc.integer({ min: -128, max: 127 }), fc.constantFrom(-1, 0x70, 0x72, 0x73, 0x74, 0x75, 0x78, 0x65, 0x69, 0x66, 0x62, 0x78)), fc.uint8Array({ maxLength: 20 })).map(([t, p]) => new Ext(t, p));

const valid = { t: 'req', id: 1, method: 'GET', path: '/api/v1/namespaces/fz-s0/pods' };

const malformed: fc.Arbitrary<Malformed> = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4096 }).chain((n) => fc.nat().map((seed) => ({ label: 'garbage', bytes: new Bytes(n, seed) }))) },
  { weight: 1, arbitrary: fc.constantFrom<Malformed>({ label: 'text frame', text: '{"t":"req","id":1}' }, { label: 'empty', bytes: new Uint8Array(0) }, { label: 'nil', value: null }, { label: 'array', value: [1, 2, 3] }, { label: 'string', value: 'req' }, { label: 'number', value: 42 }, { label: 'bin', value: new Uint8Array([1, 2, 3]) }) },
  { weight: 2, arbitrary: fc.constantFrom<Malformed>({ label: 'no id', value: { t: 'req', method: 'GET', path: '/api' } }, { label: 'string id', value: { ...valid, id: '1' } }, { label: 'float id', value: { ...valid, id: 1.5 } }, { label: 'huge id', value: { ...valid, id: 2 ** 60 } }, { label: 'bigint id', value: { ...valid, id: 2n ** 64n - 1n } }, { label: 'negative id', value: { ...valid, id: -7 } }, { label: 'NaN id', value: { ...valid, id: Number.NaN } }, { label: 'unknown t', value: { t: 'bogus', id: 1 } }, { label: 'no t', value: { id: 1 } }, { label: 't number', value: { t: 7, id: 1 } }, { label: 'logEnd bad error', value: { t: 'logEnd', id: 1, error: { code: 'x' } } }, { label: 'logData not bytes', value: { t: 'logData', id: 1, data: 'x' } }) },
  { weight: 1, arbitrary: fc.integer({ min: 16 * 1024 * 1024 + 1, max: 20 * 1024 * 1024 }).map((n) => ({ label: 'over the frame limit', bytes: new Bytes(n, 7, 'zero') })) },
  // A value followed by more bytes: the decoder's complaint quotes the value (the close reason then has multi-byte characters).
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('€', 'é', '日本', '🦀', '\u0000', 'a'), fc.integer({ min: 1, max: 60 }), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([ch, n, tail]) => ({ label: `string of ${n}×${JSON.stringify(ch)} then ${tail.byteLength} more bytes`, value: new RawMsgpack(Buffer.concat([encode(ch.repeat(n)), Buffer.from(tail)]), 'string + trailing bytes') })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('€', '日本', '🦀'), fc.integer({ min: 1, max: 200 })).map(([ch, n]) => ({ label: `unknown t of ${n}×${JSON.stringify(ch)}`, value: { t: ch.repeat(n), id: 1 } })) },
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: 1000, max: 20_000 }), fc.integer({ min: 20_000, max: 2_000_000 })).map((d) => ({ label: `nested ${d}`, value: new Nest(d, '[', ']') })) },
  { weight: 2, arbitrary: fc.tuple(fc.oneof(fc.integer({ min: 1000, max: 20_000 }), fc.integer({ min: 20_000, max: 500_000 })), fc.constantFrom('[', '{'), fc.constantFrom('POST', 'PUT', 'PATCH')).map(([d, open, method]) => ({ label: `body nested ${d}`, value: { t: 'req', id: 1, method, path: `/api/v1/namespaces/fz-s0/events${method === 'POST' ? '' : '/s-0'}`, body: { metadata: { name: 's-0' }, x: new Nest(d, open, open === '[' ? ']' : '}') } } })) },
  { weight: 2, arbitrary: fc.array(ext, { minLength: 1, maxLength: 3 }).map((exts) => ({ label: 'extensions', value: { ...valid, query: { labelSelector: exts[0] }, body: exts } })) },
  { weight: 1, arbitrary: ext.map((e) => ({ label: 'extension frame', value: e })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Malformed>(
      { label: 'msgpackr record', value: new RawMsgpack(new Packr({ useRecords: true }).pack(valid), 'a msgpackr record frame') },
      { label: 'msgpackr record, body of records', value: new RawMsgpack(new Packr({ useRecords: true }).pack({ t: 'req', id: 1, method: 'POST', path: '/api/v1/namespaces/fz-s0/events', body: { metadata: { name: 's-5' }, items: [{ a: 1 }, { a: 2 }, { a: 3 }] } }), 'records') },
      { label: 'record ext, no definition', value: new RawMsgpack(Buffer.from('d47240', 'hex'), 'record ext') },
      { label: 'record definition only', value: new RawMsgpack(Buffer.from('d4724094a174a26964a66d6574686f64a47061746840', 'hex'), 'record definition, cut') },
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom<Malformed>({ label: '__proto__ frame', value: new Pairs([['__proto__', valid]]) }, { label: '__proto__ id', value: new Pairs([['t', 'req'], ['__proto__', { id: 3 }], ['method', 'GET'], ['path', '/api']]) }, { label: '__proto__ body', value: { t: 'req', id: 1, method: 'POST', path: '/api/v1/namespaces/fz-s0/events', body: new Pairs([['__proto__', { polluted: true }], ['metadata', { name: 's-9' }]]) } }, { label: '__proto__ query', value: { ...valid, query: new Pairs([['__proto__', { labelSelector: 'x' }]]) } }, { label: 'constructor query', value: { ...valid, query: { constructor: 'x', toString: 'y' } } }, { label: 'duplicate keys', value: new Pairs([['t', 'req'], ['id', 1], ['t', 'watch'], ['id', 2], ['method', 'GET'], ['path', '/api/v1/pods']]) }) },
  { weight: 1, arbitrary: fc.constantFrom<Malformed>({ label: 'str length lies', value: new RawMsgpack(Buffer.from('82a17401a174dbffffffff41', 'hex'), 'str32 claims 4 GiB') }, { label: 'map count lies', value: new RawMsgpack(Buffer.from('dfffffffff', 'hex'), 'map32 claims 4G entries') }, { label: 'array count lies', value: new RawMsgpack(Buffer.from('ddfffffff0', 'hex'), 'array32 claims 4G items') }, { label: 'bin length lies', value: new RawMsgpack(Buffer.from('c6ffffffff00', 'hex'), 'bin32 claims 4 GiB') }, { label: 'reserved byte', value: new RawMsgpack(Buffer.from('c1', 'hex'), '0xc1') }, { label: 'truncated', value: new RawMsgpack(Buffer.from('84a174a3726571a26964', 'hex'), 'cut map') }) },
  { weight: 1, arbitrary: fc.tuple(fc.array(fc.tuple(fc.oneof(oddString, leaf), fc.oneof(tree, leaf)), { maxLength: 6 })).map(([entries]) => ({ label: 'random map', value: new Pairs([['id', 5], ...entries]) })) },
  { weight: 1, arbitrary: fc.constantFrom<Malformed>({ label: 'wrong types', value: { t: 'req', id: 1, method: 1, path: ['/api'] } }, { label: 'path no slash', value: { t: 'req', id: 1, method: 'GET', path: 'api/v1' } }, { label: 'path with query', value: { t: 'req', id: 1, method: 'GET', path: '/api/v1/pods?watch=true' } }, { label: 'query array', value: { ...valid, query: { labelSelector: ['a', 'b', ['c']] } } }, { label: 'query map value', value: { ...valid, query: { labelSelector: { a: 1 } } } }, { label: 'huge query list', value: { ...valid, query: { labelSelector: new Array(20000).fill('a=b') } } }, { label: 'cancel unknown', value: { t: 'cancel', id: 987654 } }, { label: 'watch no path', value: { t: 'watch', id: 1 } }, { label: 'logData unknown', value: { t: 'logData', id: 424242, data: new Uint8Array(4) } }, { label: 'logEnd unknown', value: { t: 'logEnd', id: 424242 } }) },
);

const bigList: fc.Arbitrary<AgentAction> = fc.tuple(fc.integer({ min: 13, max: 14 }), fc.integer({ min: 1_350_000, max: 1_450_000 }), masterArb, fc.constantFrom(`/api/v1/namespaces/${BIG_NS}/events`, '/api/v1/events')).map(([count, size, master, listPath]) => ({ type: 'big-list', count, size, master, listPath }));

const connect: fc.Arbitrary<AgentAction> = fc.tuple(fc.constantFrom('admin', 'viewer', 'garbage', 'none', 'join') as fc.Arbitrary<'admin' | 'viewer' | 'garbage' | 'none' | 'join'>, masterArb).map(([cred, master]) => ({ type: 'connect', cred, master }));

export const AGENT_WEIGHTS = { req: 10, watch: 4, malformed: 6, 'big-list': 2, connect: 1 } as const;

export function agentAction(weights: Partial<Record<keyof typeof AGENT_WEIGHTS, number>> = AGENT_WEIGHTS): fc.Arbitrary<AgentAction> {
  const all = { req: reqFrame, watch: watchFrame, malformed: malformed.chain((m) => masterArb.map<AgentAction>((master) => ({ type: 'malformed', master, m }))), 'big-list': bigList, connect };
  return fc.oneof(...(Object.keys(all) as (keyof typeof all)[]).filter((k) => (weights[k] ?? 0) > 0).map((k) => ({ weight: weights[k]!, arbitrary: all[k] })));
}

// ---- peer and client ports -------------------------------------------------------------

export type PeerAuth = 'secret' | 'none' | 'garbage' | 'wrong-secret' | 'stale';

export interface PeerAction {
  readonly port: 'peer' | 'kv';
  readonly master: number;
  readonly auth: PeerAuth;
  /** The name the credential is made out to. */
  readonly name: string;
  readonly frames: readonly unknown[];
}

/** Hellos: wrong, odd, and real members' names with ids nobody has. */
const hello = fc
  .record({
    member: fc.oneof(fc.constantFrom('fz-peer', 'm1', 'm2', 'm3', '', 'M1', 'a'.repeat(200)), oddString),
    memberId: fc.oneof(fc.constantFrom('00', 'ffffffffffffffff', 'xyz', ''), fc.stringMatching(/^[0-9a-f]{16}$/), leaf),
    cluster: fc.oneof(fc.constantFrom('chaos', 'other', ''), oddString, leaf),
    clusterId: fc.oneof(fc.constant(null), fc.constantFrom('00', 'zz'), fc.stringMatching(/^[0-9a-f]{16}$/), leaf),
  }, { requiredKeys: [] })
  .map((h) => ({ t: 'hello', ...h }));

/** Raft-looking frames (sent before any welcome, they must be refused). */
const raftFrame = fc
  .record({ type: fc.constantFrom('app', 'appResp', 'heartbeat', 'vote', 'preVote', 'snap', 'timeoutNow', 'bogus'), term: fc.oneof(oddNumber, fc.constantFrom(2 ** 53 - 1, 2 ** 52, 2 ** 64)), from: fc.constantFrom('m1', 'm2', 'fz-peer'), to: fc.constantFrom('m1', 'm2', 'm3'), commit: oddNumber, entries: fc.array(fc.record({ index: oddNumber, term: oddNumber, data: fc.uint8Array({ maxLength: 16 }) }), { maxLength: 3 }) }, { requiredKeys: [] })
  .map((m) => ({ t: 'raft', m }));

const fuzzKey = fc.oneof(fc.constantFrom('/fuzz/a', '/fuzz/b', '/fuzz/'), fc.string({ maxLength: 12 }).map((s) => `/fuzz/${s}`), fc.integer({ min: 1000, max: 70_000 }).map((n) => new Rep('k', n, '/fuzz/')));

/** Writes only under /fuzz/ (the campaign's store model covers the API's keys). */
const kvWrite = fc.oneof(
  fc.record({ type: fc.constant('put'), key: fuzzKey, value: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1_000_000, max: 5_000_000 }).map((n) => new Bytes(n, 3, 'zero')), leaf), lease: fc.option(oddNumber, { nil: undefined }), prevKv: fc.option(leaf, { nil: undefined }) }, { requiredKeys: ['type', 'key', 'value'] }),
  fc.record({ type: fc.constant('deleteRange'), key: fc.constantFrom('/fuzz/', '/fuzz/a'), prefix: fc.constant(true) }),
  fc.record({
    type: fc.constant('txn'),
    compare: fc.array(fc.record({ key: fuzzKey, target: fc.constantFrom('value', 'version', 'createRevision', 'modRevision', 'lease', 'x'), result: fc.constantFrom('equal', 'notEqual', 'less', 'greater', 'x'), value: fc.oneof(oddNumber, fc.uint8Array({ maxLength: 4 }), leaf) }), { maxLength: 3 }),
    success: fc.oneof(fc.array(fc.record({ op: fc.constantFrom('put', 'range', 'x'), key: fuzzKey, value: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 3 }), fc.integer({ min: 129, max: 2000 }).map((n) => new Array(n).fill({ op: 'range', key: '/fuzz/a' }))),
    failure: fc.oneof(fc.constant(undefined), leaf),
  }, { requiredKeys: ['type'] }),
  fc.record({ type: fc.constantFrom('leaseGrant', 'leaseRevoke', 'leaseKeepAlive', 'compact', 'bogus'), ttl: fc.option(oddNumber, { nil: undefined }), id: fc.option(oddNumber, { nil: undefined }), revision: fc.option(fc.oneof(oddNumber, fc.constantFrom(1, 2, 99999999999)), { nil: undefined }) }, { requiredKeys: ['type'] }),
  leaf,
);

const kvRange = fc.oneof(
  fc.record({ key: fc.oneof(fc.constantFrom('/', '/registry/', '/fuzz/', '', '\u0000'), oddString), prefix: fc.option(fc.oneof(fc.boolean(), leaf), { nil: undefined }), end: fc.option(fc.oneof(fc.constantFrom('\u0000', '/zzz', ''), leaf), { nil: undefined }), revision: fc.option(oddNumber, { nil: undefined }), limit: fc.option(oddNumber, { nil: undefined }), keysOnly: fc.option(leaf, { nil: undefined }), countOnly: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: [] }),
  leaf,
);

const kvFrame = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('req'), id: fc.nat(), op: fc.constant('write'), request: kvWrite, session: fc.option(fc.oneof(fc.record({ client: fc.oneof(fc.constantFrom('fz', ''), fc.string({ maxLength: 200 })), seq: oddNumber, firstUnacked: oddNumber }), leaf), { nil: undefined }), timeoutMs: fc.option(fc.oneof(oddNumber, leaf), { nil: undefined }) }, { requiredKeys: ['t', 'id', 'op', 'request'] }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('req'), id: fc.nat(), op: fc.constant('range'), request: kvRange, serializable: fc.option(leaf, { nil: undefined }), timeoutMs: fc.option(oddNumber, { nil: undefined }) }, { requiredKeys: ['t', 'id', 'op', 'request'] }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('req'), id: fc.nat(), op: fc.constantFrom('status', 'bogus', '', 'member', 'transfer'), action: fc.constantFrom('promote', 'remove', 'bogus'), name: fc.constantFrom('zz-nope', 'M1', '', 'fz-peer'), to: fc.oneof(fc.constantFrom('zz-nope', ''), leaf) }, { requiredKeys: ['t', 'id', 'op'] }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('watch'), id: fc.nat(), request: fc.oneof(fc.record({ key: fc.constantFrom('/fuzz/', '/registry/events/', '/'), prefix: fc.constant(true), startRevision: fc.option(fc.oneof(oddNumber, fc.constantFrom(1, 2)), { nil: undefined }), prevKv: fc.option(leaf, { nil: undefined }) }), leaf) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel'), id: fc.oneof(fc.nat(), leaf) }) },
);

const peerBytes = fc.oneof(
  { weight: 3, arbitrary: malformed.map((m) => m.value ?? m.bytes ?? m.text ?? null) },
  { weight: 3, arbitrary: hello },
  { weight: 2, arbitrary: raftFrame },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('control'), c: fc.oneof(tree, fc.record({ type: fc.constantFrom('hash', 'hashReply', 'alarm'), index: oddNumber, hash: oddString })) }) },
);

export const peerAction: fc.Arbitrary<PeerAction> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ port: fc.constant<'peer'>('peer'), master: masterArb, auth: fc.constantFrom<PeerAuth>('secret', 'secret', 'secret', 'none', 'garbage', 'wrong-secret', 'stale'), name: fc.constantFrom('fz-peer', 'fz-peer', 'm1', 'm2', 'm3'), frames: fc.array(peerBytes, { minLength: 1, maxLength: 4 }) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ port: fc.constant<'kv'>('kv'), master: masterArb, auth: fc.constantFrom<PeerAuth>('secret', 'secret', 'secret', 'none', 'garbage', 'wrong-secret', 'stale'), name: fc.constantFrom('fz-client', 'fz-client', 'm1'), frames: fc.array(fc.oneof({ weight: 5, arbitrary: kvFrame }, { weight: 2, arbitrary: malformed.map((m) => m.value ?? m.bytes ?? m.text ?? null) }), { minLength: 1, maxLength: 5 }) }),
  },
);

export { Nest };

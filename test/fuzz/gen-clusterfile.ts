// Cluster files: valid ones broken in a field or two, YAML that parsers trip on (alias bombs,
// deep nesting, tags, merge keys, directives), and splices of the two. Sizes stay where the
// yaml package parses in well under a second (it takes ~10 µs a byte on deep or repetitive
// input), so a "hang" is a hang, not a slow machine.
import fc from 'fast-check';
import { stringify } from 'yaml';
import { keyArb, mutate, oddNumber, oddString, ownObject, tree, type Mutation } from './gen-values.ts';
import { Rep } from './spec.ts';

export interface ClusterFileCase {
  readonly mode: 'parse' | 'load';
  /** The YAML text (Rep: made when sent). */
  readonly text: string | Rep;
  /** Files the case refers to (secretFile, tokenFile), written beside it; 'DIR' makes a directory. */
  readonly files: readonly { readonly name: string; readonly content: string | 'DIR' }[];
  readonly label: string;
}

const VALID = {
  cluster: 'fz',
  secret: 'fuzz-secret-0123456789',
  raft: { tickMs: 25, electionTicks: 12, heartbeatTicks: 2 },
  tokens: [{ name: 'admin', token: 'admin-token-0123456789', role: 'admin' }],
  joinToken: 'join-token-0123456789',
  masters: [
    { name: 'm1', peer: '127.0.0.11:7101', client: '127.0.0.11:7201', api: '127.0.0.11:9101', data: 'm1' },
    { name: 'm2', peer: '127.0.0.12:7101', client: '127.0.0.12:7201', data: 'm2', join: true },
  ],
  workers: [{ name: 'w1', address: '127.0.2.1', data: 'w1', labels: { a: 'b' }, taints: [{ key: 'k', effect: 'NoSchedule' }], reserve: { cpu: '100m', memory: '256Mi' }, podPorts: '20000-29999', maxPods: 110 }],
  store: { historyRevisions: 1000, quotaBytes: 0 },
  apiServer: { maxRequestsInFlight: 400, maxMutatingRequestsInFlight: 200 },
  nodeLifecycle: { gracePeriodSeconds: 5, evictionSeconds: 5 },
  controlPlane: true,
  insecureHttp: false,
};

const CF_PATHS: readonly (readonly string[])[] = [
  ['cluster'],
  ['secret'],
  ['secretFile'],
  ['tokenFile'],
  ['raft'],
  ['raft', 'tickMs'],
  ['raft', 'electionTicks'],
  ['raft', 'heartbeatTicks'],
  ['tokens'],
  ['tokens', '0'],
  ['tokens', '0', 'token'],
  ['tokens', '0', 'role'],
  ['tokens', '1'],
  ['joinToken'],
  ['masters'],
  ['masters', '0'],
  ['masters', '0', 'name'],
  ['masters', '0', 'peer'],
  ['masters', '0', 'peerListen'],
  ['masters', '0', 'client'],
  ['masters', '0', 'api'],
  ['masters', '0', 'data'],
  ['masters', '0', 'join'],
  ['masters', '1', 'join'],
  ['masters', '1', 'name'],
  ['masters', '2'],
  ['workers'],
  ['workers', '0'],
  ['workers', '0', 'name'],
  ['workers', '0', 'address'],
  ['workers', '0', 'labels'],
  ['workers', '0', 'taints'],
  ['workers', '0', 'taints', '0'],
  ['workers', '0', 'reserve'],
  ['workers', '0', 'podPorts'],
  ['workers', '0', 'maxPods'],
  ['store'],
  ['store', 'historyRevisions'],
  ['store', 'quotaBytes'],
  ['apiServer'],
  ['apiServer', 'maxRequestsInFlight'],
  ['nodeLifecycle'],
  ['nodeLifecycle', 'gracePeriodSeconds'],
  ['controlPlane'],
  ['insecureHttp'],
  ['__proto__'],
  ['constructor'],
  ['toString'],
  ['masters', '0', '__proto__'],
  ['tokens', '0', 'hasOwnProperty'],
];

const cfValue = fc.oneof(
  { weight: 3, arbitrary: tree },
  { weight: 2, arbitrary: oddNumber },
  { weight: 2, arbitrary: oddString },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('127.0.0.1:0', '127.0.0.1:65536', '[::1]:80', '[zz]:1', ':80', 'host:', '1.2.3.4:99999999999999999999', '0-0', '65535-1024', '1024-65535', 'SECRETFILE', 'TOKENFILE', 'DIRFILE', '/dev/null', '/proc/self/status', '/nonexistent/x', '.', '', '~', null, [], {}, [null], [[]], 1e400, -0) },
);

const cfMutation: fc.Arbitrary<Mutation> = fc.record({ path: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...CF_PATHS) }, { weight: 1, arbitrary: fc.array(keyArb, { minLength: 1, maxLength: 2 }) }), value: fc.oneof({ weight: 6, arbitrary: cfValue }, { weight: 1, arbitrary: fc.constant(undefined) }) });

/** YAML that stresses the parser itself. */
const nasty: fc.Arbitrary<string | Rep> = fc.oneof(
  // alias bombs ("billion laughs"): each level refers to the one before N times
  fc.tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 20 })).map(([levels, width]) => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= levels; i++) lines.push(`a${i}: &a${i} [${new Array(width).fill(`*a${i - 1}`).join(', ')}]`);
    lines.push(`masters: *a${levels}`);
    return lines.join('\n');
  }),
  fc.integer({ min: 100, max: 50_000 }).map((n) => new Rep('[', n, 'masters: ', '')),
  fc.integer({ min: 100, max: 20_000 }).map((n) => new Rep('{a: ', n, 'raft: ', '')),
  fc.integer({ min: 100, max: 30_000 }).map((n) => new Rep('- ', n, 'masters:\n', 'x')),
  fc.integer({ min: 50, max: 5_000 }).map((n) => {
    const lines = ['masters:'];
    for (let i = 0; i < n; i++) lines.push(`${' '.repeat(i + 1)}- `);
    return lines.join('\n');
  }),
  fc.integer({ min: 1000, max: 5_000_000 }).map((n) => new Rep('a', n, 'secret: ', '')),
  fc.integer({ min: 100, max: 20_000 }).map((n) => new Rep('x: 1\n', n, '', 'cluster: fz')),
  fc.integer({ min: 100, max: 20_000 }).map((n) => new Rep('&a ', n, 'cluster: ', 'x')),
  fc.integer({ min: 100, max: 20_000 }).map((n) => new Rep('<<: {a: 1}\n', n)),
  fc.constantFrom(
    'cluster: &a fz\nsecret: *b\n',
    'a: &a [*a]\nmasters: *a\n',
    '<<: *x\n',
    'masters: !!binary aGVsbG8=\n',
    'masters: !!set {a, b}\n',
    'masters: !!omap [a: 1, b: 2]\n',
    'cluster: !!js/function "function () { return 1 }"\n',
    'cluster: !<tag:yaml.org,2002:str> fz\n',
    'cluster: !custom fz\n',
    '%YAML 2.0\n---\ncluster: fz\n',
    '%TAG ! tag:x,2000:\n---\ncluster: !x fz\n',
    '---\ncluster: a\n---\ncluster: b\n',
    'cluster: fz\ncluster: fz\n',
    '? [a, b]\n: c\n',
    '? {a: 1}\n: c\nmasters: [{name: m1}]\n',
    '\ufeffcluster: fz\n',
    'cluster:\tfz\n',
    'cluster: "\\ud800"\n',
    'cluster: "\\x00"\n',
    'cluster: "\\U0010FFFF"\n',
    'cluster: 0x1F\nraft: {tickMs: 0o17, electionTicks: .inf, heartbeatTicks: .nan}\n',
    'raft: {tickMs: 1_000, electionTicks: 12, heartbeatTicks: 2}\n',
    'raft: {tickMs: 2001-12-14t21:59:43.10-05:00}\n',
    'masters: [{name: m1, peer: "127.0.0.1:1", client: "127.0.0.1:2", data: d, __proto__: {join: true}}]\n',
    '__proto__: {cluster: fz}\n',
    'constructor: {prototype: {polluted: true}}\n',
    'masters:\n  - name: m1\n    peer: 127.0.0.1:1\n     client: x\n',
    ': x\n',
    '[',
    '{',
    '"',
    "'",
    '|',
    '>-\n  x',
    '*',
    '&',
    '!',
    '%',
    '@x',
    '`x`',
    '\u0000',
    '\r\r\r',
    'a: b: c',
    '- - - -',
    'cluster: fz\n...\ngarbage: [',
  ),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
);

function yamlOf(v: unknown): string {
  try {
    return stringify(v, { aliasDuplicateObjects: false });
  } catch {
    return JSON.stringify(v) ?? 'null';
  }
}

export const clusterFileCase: fc.Arbitrary<ClusterFileCase> = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.array(cfMutation, { minLength: 0, maxLength: 3 }).map((ms) => ({ label: 'mutated', text: yamlOf(mutate(VALID, ms)) as string | Rep })) },
      { weight: 4, arbitrary: nasty.map((text) => ({ label: 'nasty', text })) },
      {
        weight: 2,
        arbitrary: fc.tuple(fc.array(cfMutation, { maxLength: 2 }), nasty, fc.nat()).map(([ms, n, at]) => {
          const lines = yamlOf(mutate(VALID, ms)).split('\n');
          const i = at % (lines.length + 1);
          const snippet = typeof n === 'string' ? n : n.n < 20_000 ? n.materialize() : 'x: [';
          return { label: 'spliced', text: [...lines.slice(0, i), snippet, ...lines.slice(i)].join('\n') };
        }),
      },
      { weight: 1, arbitrary: fc.array(fc.tuple(keyArb, tree), { maxLength: 5 }).map((pairs) => ({ label: 'random', text: yamlOf(ownObject(pairs)) })) },
    ),
    fc.constantFrom<'parse' | 'load'>('parse', 'parse', 'load'),
    fc.option(fc.oneof(tree.map((t) => yamlOf(t)), fc.constantFrom('', 'x', '- {name: a, token: short, role: admin}\n', '- {name: a, token: 0123456789abcdefgh, role: root}\n', '[', 'a: &a [*a]')), { nil: undefined }),
  )
  .map(([c, mode, tokenFileText]) => {
    const text = typeof c.text === 'string' ? c.text.replaceAll('SECRETFILE', 'secret.txt').replaceAll('TOKENFILE', 'tokens.yaml').replaceAll('DIRFILE', 'adir') : c.text;
    const files: { name: string; content: string | 'DIR' }[] = [];
    if (mode === 'load') {
      files.push({ name: 'secret.txt', content: 'fuzz-secret-from-file-0123456789\n' }, { name: 'adir', content: 'DIR' });
      if (tokenFileText !== undefined) files.push({ name: 'tokens.yaml', content: tokenFileText });
    }
    return { mode, text, files, label: c.label };
  });

// Cluster files built to hurt the parser (issue 12): YAML that the yaml package recursed into
// until a RangeError escaped (or V8 aborted the process out of memory), alias bombs whose
// ReferenceError escaped, and files far larger than any cluster needs. Each is refused with one
// sentence (a ClusterFileError), and the files we ship still load.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { ClusterFileError, loadClusterFile, MAX_CLUSTER_FILE_DEPTH, parseClusterFile, yamlDepth } from '@flotilla/cli';

const GOOD = 'cluster: t\nsecret: 0123456789abcdef-test\nmasters:\n  - { name: m1, peer: "127.0.0.1:7101", client: "127.0.0.1:7201", data: d1 }\n';

function refused(text: string, message: RegExp): void {
  assert.throws(() => parseClusterFile(text, '/fuzz/cluster.yaml'), (e: unknown) => {
    assert.ok(e instanceof ClusterFileError, `a ${(e as Error)?.constructor?.name}: ${(e as Error)?.message?.slice(0, 200)}`);
    assert.match(e.message, message);
    assert.equal(e.message.split('\n').length, 1, 'one line');
    return true;
  });
}

test('YAML nested far deeper than any cluster file is refused with the bound named, not a RangeError', () => {
  const deep = /nests more than 64 levels deep at line \d+; the limit is 64/;
  refused(`${GOOD}workers:\n${'- '.repeat(15_000)}x\n`, deep); // a RangeError escaped before
  refused(`masters:\n${Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i + 1)}- `).join('\n')}`, deep);
  refused(`raft: ${'{a: '.repeat(20_000)}`, deep);
  // Found by the fuzz campaign: closing 20,000 levels at once overflows the parser's own stack.
  refused(`masters:\n${'- '.repeat(20_000)}x\nraft: 1\n`, /nests too deeply to read \(far more than 64 levels, the limit\)/);
  // V8 aborted the whole process ("RegExpCompiler Allocation failed") on this one.
  refused(`masters: ${'['.repeat(50_000)}`, deep);
});

test('an alias bomb is refused with one sentence, not a ReferenceError', () => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i <= 9; i++) lines.push(`a${i}: &a${i} [${new Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  refused(`${lines.join('\n')}\nmasters: *a9\n`, /uses aliases to build more than 100 nodes, the limit/);
  refused('cluster: &a fz\nsecret: *b\n', /is not valid YAML: Unresolved alias/);
});

test('a cluster file over 1 MiB is refused with the bound named', () => {
  refused(`${GOOD}# ${'x'.repeat(1024 * 1024)}\n`, /is larger than 1048576 bytes, the limit/);
});

test('the cluster files we ship, and the same with comments, quotes and flow collections, still load', () => {
  const dir = fileURLToPath(new URL('../../../cluster-configs/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const f of files) assert.ok(loadClusterFile(join(dir, f)).masters.length >= 1, f);
  const odd = GOOD.replace('cluster: t', 'cluster: t # [[[[ not brackets\n# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\nraft: { tickMs: 25 }').replace('secret: 0123456789abcdef-test', 'secret: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["');
  assert.equal(parseClusterFile(odd, '/x/cluster.yaml').cluster, 't');
});

test('property: the depth scan never says less than the parsed value nests (so the bound cannot be stepped around)', () => {
  const depthOf = (v: unknown): number => (typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.oneof(fc.string(), fc.integer(), fc.boolean()), tie('list'), tie('map')),
    list: fc.array(tie('tree'), { maxLength: 3 }),
    map: fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), tie('tree'), { maxKeys: 3 }),
  }));
  fc.assert(
    fc.property(tree, fc.boolean(), fc.constantFrom(1, 2, 4), fc.constantFrom(0, 1, 3), (value, flow, indent, shift) => {
      const text = stringify({ v: value }, flow ? { collectionStyle: 'flow' } : { indent });
      const atLevel = stringify({ v: value }, { indent, indentSeq: false }).replace(/^/gm, ' '.repeat(shift));
      for (const t of [text, atLevel]) assert.ok(yamlDepth(t, Infinity).depth >= depthOf({ v: value }), `${yamlDepth(t, Infinity).depth} < ${depthOf({ v: value })} for\n${t}`);
    }),
    { numRuns: 500 },
  );
  assert.equal(yamlDepth('a: [[1]]\n', Infinity).depth, 3);
  // The comparison catches a broken measure: counting brackets in the text, as a first version
  // did, is fooled by brackets inside quotes, and by plain scalars holding quotes.
  const brackets = (t: string): number => {
    let d = 0;
    let m = 0;
    for (const c of t) m = Math.max(m, (d = Math.max(0, d + (c === '[' || c === '{' ? 1 : c === ']' || c === '}' ? -1 : 0))));
    return m + 1;
  };
  const fooled = `a: [ "]", [ "]", [ "]", [ "]", [ x ] ] ] ] ]`;
  assert.equal(depthOf(parse(fooled)), 6);
  assert.ok(brackets(fooled) < 6, 'the broken measure is caught by the same comparison');
  assert.equal(yamlDepth(fooled, Infinity).depth, 6);
  assert.ok(MAX_CLUSTER_FILE_DEPTH >= 16);
});

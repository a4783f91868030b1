// Values the generators share: odd strings, keys that mean something to JavaScript, JSON-ish
// trees, and mutations of plausible objects.
import fc from 'fast-check';
import { Nest, Rep } from './spec.ts';

/** Keys with a meaning to JavaScript or to the API's patch code. */
export const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'length', '$patch', '$retainKeys', '$setElementOrder/containers', '$deleteFromPrimitiveList/finalizers', 'metadata', 'spec', 'status', 'name', 'namespace', 'kind', 'apiVersion', 'items', 'labels', 'annotations', 'finalizers', 'resourceVersion', ''] as const;

export const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\r\n',
  '\t',
  '\u202e',
  '\ud800',
  '\udfff',
  '\ufeff',
  '\u2028',
  'é',
  '日本',
  '🦀',
  '..',
  '/',
  '%',
  '%00',
  '%2F',
  '../..',
  'A',
  '-a',
  'a-',
  'a.b',
  'a_b',
  'true',
  'null',
  '0',
  '-1',
  '1e999',
  'NaN',
  '__proto__',
  'constructor',
  'toString',
  '$(X)',
  '<script>',
  "'",
  '"',
  '\\',
  'Bearer x',
  'fz-m0',
  'kube-system',
] as const;

export const oddString: fc.Arbitrary<string | Rep> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 4, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 1, arbitrary: fc.integer({ min: 64, max: 70_000 }).map((n) => new Rep('a', n)) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 5000 }).map((n) => new Rep('\u0000', n)) },
);

export const oddNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(2 ** 31, 2 ** 31 - 1, -(2 ** 31), 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, 1.5, -0, 0.1, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

export const leaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: oddString },
  { weight: 3, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom({}, [], [null], [{}], { a: {} }) },
);

export const keyArb: fc.Arbitrary<string> = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...SPECIAL_KEYS) }, { weight: 2, arbitrary: fc.string({ maxLength: 10 }) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) });

/** An object whose keys are own properties, "__proto__" included. */
export function ownObject(pairs: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of pairs) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** JSON-like trees of odd leaves and odd keys, a few levels deep. */
export const tree: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 2, arbitrary: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 4 }).map(ownObject) },
  ),
})).value;

/** Deep nesting, as a value inlined in JSON text or built for msgpack. */
export const nest: fc.Arbitrary<Nest> = fc
  .tuple(fc.oneof(fc.integer({ min: 100, max: 5000 }), fc.integer({ min: 5000, max: 200_000 }), fc.constant(1_000_000)), fc.constantFrom<[string, string]>(['[', ']'], ['{"a":', '}'], ['[{"x":', '}]']))
  .map(([depth, [open, close]]) => new Nest(depth, open, close));

/** Paths into objects that the API cares about. */
export const OBJECT_PATHS: readonly (readonly string[])[] = [
  ['metadata'],
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['metadata', 'generateName'],
  ['metadata', 'labels'],
  ['metadata', 'labels', 'a'],
  ['metadata', 'labels', '__proto__'],
  ['metadata', 'annotations'],
  ['metadata', 'annotations', 'x'],
  ['metadata', 'finalizers'],
  ['metadata', 'ownerReferences'],
  ['metadata', 'resourceVersion'],
  ['metadata', 'uid'],
  ['metadata', 'deletionTimestamp'],
  ['metadata', 'deletionGracePeriodSeconds'],
  ['metadata', 'creationTimestamp'],
  ['metadata', 'managedFields'],
  ['metadata', '__proto__'],
  ['metadata', 'constructor'],
  ['kind'],
  ['apiVersion'],
  ['spec'],
  ['spec', 'containers'],
  ['spec', 'containers', '0'],
  ['spec', 'containers', '0', 'name'],
  ['spec', 'containers', '0', 'command'],
  ['spec', 'containers', '0', 'ports'],
  ['spec', 'containers', '0', 'env'],
  ['spec', 'containers', '0', 'resources'],
  ['spec', 'nodeName'],
  ['spec', 'ports'],
  ['spec', 'ports', '0', 'port'],
  ['spec', 'ports', '0', 'name'],
  ['spec', 'selector'],
  ['spec', 'selector', 'matchLabels'],
  ['spec', 'template'],
  ['spec', 'template', 'metadata', 'labels'],
  ['spec', 'clusterIP'],
  ['spec', 'type'],
  ['spec', 'holderIdentity'],
  ['spec', 'leaseDurationSeconds'],
  ['spec', 'renewTime'],
  ['spec', 'finalizers'],
  ['spec', 'taints'],
  ['spec', 'unschedulable'],
  ['status'],
  ['status', 'phase'],
  ['status', 'conditions'],
  ['message'],
  ['reason'],
  ['involvedObject'],
  ['subsets'],
  ['items'],
];

/** Values for the fields where some values set controllers working (replicas kept small on purpose). */
export const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: tree },
  { weight: 1, arbitrary: fc.constantFrom(['foregroundDeletion'], ['orphan'], ['fz.io/hold'], ['a', 'a'], [''], [1]) },
  { weight: 1, arbitrary: fc.constantFrom([{ apiVersion: 'v1', kind: 'Pod', name: 'x', uid: '00000000-0000-0000-0000-000000000000' }], [{}], [null], [{ uid: 1 }]) },
);

export interface Mutation {
  readonly path: readonly string[];
  /** undefined: delete the field */
  readonly value: unknown;
}

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      path: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...OBJECT_PATHS) }, { weight: 1, arbitrary: fc.array(keyArb, { minLength: 1, maxLength: 3 }) }),
      value: fc.oneof({ weight: 8, arbitrary: fieldValue }, { weight: 1, arbitrary: fc.constant(undefined) }),
    }),
  },
  // Replicas stay small: a Deployment of 2^53 pods is an admin's right to ask for, not a malformed request.
  { weight: 1, arbitrary: fc.record({ path: fc.constant(['spec', 'replicas']), value: fc.constantFrom<unknown>(0, 1, 2, 3, -1, '2', 1.5, null, true, [], undefined) }) },
);

/** A copy of `obj` with the mutations applied (creating parents, own properties only). */
export function mutate(obj: unknown, mutations: readonly Mutation[]): unknown {
  let root = structuredCloneOwn(obj);
  for (const m of mutations) {
    if (m.path.length === 0) {
      root = m.value;
      continue;
    }
    if (typeof root !== 'object' || root === null) root = {};
    let cur = root as Record<string, unknown>;
    for (const seg of m.path.slice(0, -1)) {
      let next = Object.hasOwn(cur, seg) ? cur[seg] : undefined;
      if (typeof next !== 'object' || next === null) {
        next = /^\d+$/.test(seg) ? [] : {};
        if (!define(cur, seg, next)) break;
      }
      cur = next as Record<string, unknown>;
    }
    const last = m.path[m.path.length - 1]!;
    if (m.value === undefined) {
      if (!(Array.isArray(cur) && last === 'length')) delete cur[last];
    } else define(cur, last, m.value);
  }
  return root;
}

/** Sets an own property (an array's length, say, cannot be every value): false if it could not. */
function define(o: object, key: string, value: unknown): boolean {
  try {
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
    return true;
  } catch {
    return false;
  }
}

/** A deep copy that keeps "__proto__" as an own key and class leaves (Rep, Nest) as they are. */
export function structuredCloneOwn(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(structuredCloneOwn);
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: structuredCloneOwn((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

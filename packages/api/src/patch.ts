// The three patch formats the API accepts: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and Kubernetes' strategic merge patch for the built-in kinds, where lists of
// named things (containers, ports, env, conditions…) merge by key instead of being replaced.

export class PatchError extends Error {
  override readonly name = 'PatchError';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '__proto__') throw new PatchError('a patch may not contain "__proto__"');
    if (v === null) delete out[k];
    else out[k] = mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v);
  }
  return out;
}

/** RFC 6902 operations. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be a list of operations');
  let doc = structuredClone(target);
  for (const [i, raw] of ops.entries()) {
    if (!isObject(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') throw new PatchError(`operation ${i} needs "op" and "path"`);
    const op = raw['op'];
    const path = parsePointer(raw['path'], i);
    switch (op) {
      case 'add':
        doc = put(doc, path, structuredClone(raw['value']), 'add', i);
        break;
      case 'replace':
        get(doc, path, i);
        doc = put(doc, path, structuredClone(raw['value']), 'replace', i);
        break;
      case 'remove':
        doc = remove(doc, path, i);
        break;
      case 'test':
        if (JSON.stringify(get(doc, path, i)) !== JSON.stringify(raw['value'])) throw new PatchError(`operation ${i}: test failed at ${String(raw['path'])}`);
        break;
      case 'copy':
      case 'move': {
        if (typeof raw['from'] !== 'string') throw new PatchError(`operation ${i} (${op}) needs "from"`);
        const from = parsePointer(raw['from'], i);
        const value = structuredClone(get(doc, from, i));
        if (op === 'move') doc = remove(doc, from, i);
        doc = put(doc, path, value, 'add', i);
        break;
      }
      default:
        throw new PatchError(`operation ${i}: unknown op "${op}"`);
    }
  }
  return doc;
}

function parsePointer(p: string, i: number): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`operation ${i}: path "${p}" must start with /`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function get(doc: unknown, path: readonly string[], i: number): unknown {
  let cur = doc;
  for (const seg of path) {
    // Own properties only: a path through "constructor" or "__proto__" must not reach the
    // prototypes (and let a patch change every object in the process).
    if (Array.isArray(cur)) cur = /^(0|[1-9]\d*)$/.test(seg) ? cur[Number(seg)] : undefined;
    else if (isObject(cur)) cur = Object.hasOwn(cur, seg) ? cur[seg] : undefined;
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`operation ${i}: path /${path.join('/')} does not exist`);
  }
  return cur;
}

function put(doc: unknown, path: readonly string[], value: unknown, mode: 'add' | 'replace', i: number): unknown {
  if (path.length === 0) return value;
  const parent = get(doc, path.slice(0, -1), i);
  const last = path[path.length - 1]!;
  if (Array.isArray(parent)) {
    const at = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(at) || at < 0 || at > parent.length) throw new PatchError(`operation ${i}: index ${last} is out of range`);
    if (mode === 'add') parent.splice(at, 0, value);
    else parent[at] = value;
  } else if (isObject(parent)) {
    Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
  } else {
    throw new PatchError(`operation ${i}: cannot set ${last} inside a ${typeof parent}`);
  }
  return doc;
}

function remove(doc: unknown, path: readonly string[], i: number): unknown {
  if (path.length === 0) throw new PatchError(`operation ${i}: cannot remove the whole document`);
  const parent = get(doc, path.slice(0, -1), i);
  const last = path[path.length - 1]!;
  get(doc, path, i);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else delete (parent as Record<string, unknown>)[last];
  return doc;
}

/**
 * The merge keys of the lists the built-in kinds merge by (Kubernetes' patchMergeKey tags).
 * `ports` depends on where it is: container ports merge by containerPort, service ports by port.
 */
function mergeKey(field: string, parentPath: string): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'ports':
      return parentPath.endsWith('spec') ? 'port' : 'containerPort';
    case 'conditions':
      return 'type';
    case 'volumeMounts':
      return 'mountPath';
    case 'ownerReferences':
      return 'uid';
    case 'addresses':
      return parentPath.endsWith('status') ? 'type' : undefined;
    default:
      return undefined;
  }
}

/** Lists of scalars that merge as sets (patchStrategy "merge" on a primitive list). */
const SET_LISTS = new Set(['finalizers']);

/**
 * Kubernetes' strategic merge patch for the built-in kinds: maps merge like JSON merge patch;
 * lists with a merge key merge item by item (an item with `$patch: delete` is removed);
 * `$patch: replace` replaces a map; `$retainKeys` and `$deleteFromPrimitiveList/…` (sent by
 * kubectl) are honoured. `$setElementOrder/…` is accepted and ignored: merged lists keep the
 * stored order, with new items appended.
 */
export function strategicMergePatch(target: unknown, patch: unknown, path = ''): unknown {
  if (!isObject(patch)) return patch;
  if (patch['$patch'] === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch['$patch'] === 'delete') return undefined;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch['$retainKeys']) ? new Set(patch['$retainKeys'] as string[]) : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '__proto__') throw new PatchError('a patch may not contain "__proto__"');
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const gone = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((x) => !gone.has(JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const here = path === '' ? k : `${path}.${k}`;
    if (Array.isArray(v)) {
      const key = mergeKey(k, path);
      if (key !== undefined && Array.isArray(out[k])) out[k] = mergeList(out[k] as unknown[], v, key, here);
      else if (SET_LISTS.has(k) && Array.isArray(out[k])) out[k] = [...new Set([...(out[k] as unknown[]), ...v].map((x) => JSON.stringify(x)))].map((x) => JSON.parse(x) as unknown);
      else out[k] = v.map((item) => stripDirectives(item)).filter((item) => item !== undefined);
    } else {
      const merged = strategicMergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v, here);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  if (retain !== undefined) for (const k of Object.keys(out)) if (!retain.has(k)) delete out[k];
  return out;
}

function mergeList(current: unknown[], patch: unknown[], key: string, path: string): unknown[] {
  const out = current.map((x) => x);
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(item);
      continue;
    }
    const id = item[key];
    const at = out.findIndex((x) => isObject(x) && x[key] === id);
    if (item['$patch'] === 'delete') {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    if (at >= 0) out[at] = strategicMergePatch(out[at], item, path);
    else out.push(stripDirectives(item));
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  if (v['$patch'] === 'delete') return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

/** The same value with every object's keys sorted: JSON that compares equal whatever the key order. */
export function canonicalJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonicalJson);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, canonicalJson(x)]));
}

/** Equal as JSON whatever the order of keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonicalJson(a)) === JSON.stringify(canonicalJson(b));
}

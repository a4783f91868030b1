// What the store must hold at the end: for the kinds no controller writes (services, leases)
// in the model namespaces, every accepted (2xx) create, update, patch and delete is recorded
// with the resourceVersion its answer carried; for each object the answer with the highest
// resourceVersion wins. A request that was refused must have changed nothing: an object that
// is there without an accepted request having made it, or at another resourceVersion, or with
// other content, is a mismatch.
//
// Some outcomes cannot be known: a write that got no answer (a timeout, a master that went
// away, a 5xx) may or may not have landed; objects with ownerReferences or the
// foregroundDeletion/orphan finalizers are the garbage collector's to change; a
// deletecollection removes what it removes (and marks what its finalizers hold). Such objects are left out of the comparison
// (and counted), never guessed.
import { MODEL_KINDS, MODEL_NS } from './world.ts';

interface Entry {
  rv: number;
  present: boolean;
  /** The object as the answer gave it (canonical JSON), when the answer carried it whole. */
  json?: string;
  uid?: string;
  /** When the request that wrote it was sent. */
  sentAt: number;
  what: string;
}

export interface Mismatch {
  readonly key: string;
  readonly problem: string;
  readonly expected?: string;
  readonly found?: string;
}

/** Where a request goes, read the way the API server reads it. */
export interface Route {
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

const MODEL_RESOURCES = new Set(MODEL_KINDS.map((k) => k.resource));
const MODEL_KIND_NAMES = new Map(MODEL_KINDS.map((k) => [k.kind, k.resource]));

/** The route of a target (origin-form or absolute-form), or undefined if it is not a model kind's. */
export function routeOf(target: string): Route | undefined {
  let url: URL;
  try {
    url = new URL(target, 'https://flotilla');
  } catch {
    return undefined;
  }
  let parts: string[];
  try {
    parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts[1] === 'coordination.k8s.io' && parts[2] === 'v1') rest = parts.slice(3);
  else return undefined;
  if (rest[0] === 'watch') return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest;
  if (resource === undefined || !MODEL_RESOURCES.has(resource)) return undefined;
  if ((parts[0] === 'api') !== (resource === 'services')) return undefined;
  return { resource, namespace, name, subresource };
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

interface Meta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  uid?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  finalizers?: string[];
  ownerReferences?: unknown[];
  generateName?: string;
}

export class StoreModel {
  private readonly entries = new Map<string, Entry>();
  /** Keys left out of the comparison, and why. */
  readonly unknown = new Map<string, string>();
  /** Collections a deletecollection emptied (partly), with when its answer came. */
  private readonly sweeps: { resource: string; namespace: string | undefined; answeredAt: number }[] = [];
  /** Creates whose outcome is unknown and whose name the server would generate: prefixes an object may appear under. */
  private readonly generated = new Set<string>();
  accepted = 0;

  private key(resource: string, namespace: string, name: string): string {
    return `${resource}/${namespace}/${name}`;
  }

  /**
   * Records what a request did. `body`: the request body as sent (to find the name of a create
   * whose outcome is unknown); `status` undefined: no answer.
   */
  observe(method: string, target: string, body: Buffer | undefined, status: number | undefined, response: Buffer | undefined, sentAt: number, answeredAt: number, what: string): void {
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return;
    const route = routeOf(target);
    const answer = status !== undefined && status >= 200 && status < 300 ? parse(response) : undefined;
    const answerKind = typeof answer === 'object' && answer !== null ? (answer as { kind?: unknown }).kind : undefined;
    if (route === undefined && !(typeof answerKind === 'string' && MODEL_KIND_NAMES.has(answerKind))) return;
    if (status !== undefined && status >= 400 && status < 500) return; // refused: must have changed nothing
    if (status !== undefined && status >= 200 && status < 300) {
      if (dryRun(method, target, body)) return;
      this.accepted++;
      if (method === 'DELETE' && route !== undefined && route.name === undefined) {
        this.sweeps.push({ resource: route.resource, namespace: route.namespace, answeredAt });
        return;
      }
      const obj = objectOf(answer);
      if (obj === undefined) {
        // e.g. a Status instead of the object: what it did is not said
        if (route?.name !== undefined && route.namespace !== undefined) this.markUnknown(this.key(route.resource, route.namespace, route.name), `answered ${status} without the object (${what})`);
        return;
      }
      const meta = obj.meta;
      const resource = obj.resource ?? route?.resource;
      if (resource === undefined || meta.namespace === undefined || meta.name === undefined || !(MODEL_NS as readonly string[]).includes(meta.namespace)) return;
      const key = this.key(resource, meta.namespace, meta.name);
      const rv = Number(meta.resourceVersion);
      if (!Number.isSafeInteger(rv)) return this.markUnknown(key, `answered without a resourceVersion (${what})`);
      if ((meta.ownerReferences?.length ?? 0) > 0 || (meta.finalizers ?? []).some((f) => f === 'foregroundDeletion' || f === 'orphan')) this.markUnknown(key, 'the garbage collector may change it');
      // A DELETE answers with the object: kept (marked) while finalizers or a grace period hold
      // it, else gone at the answer's resourceVersion. An update that removes the last
      // finalizer of a marked object deletes it too (shouldDeleteDuringUpdate).
      const held = meta.deletionTimestamp !== undefined && ((meta.finalizers ?? []).length > 0 || (meta.deletionGracePeriodSeconds ?? 0) > 0);
      const gone = method === 'DELETE' ? !held : method !== 'POST' && meta.deletionTimestamp !== undefined && !held;
      const entry: Entry = { rv, present: !gone, sentAt, what, ...(obj.whole && !gone ? { json: canonical(obj.value) } : {}), ...(meta.uid === undefined ? {} : { uid: meta.uid }) };
      const prev = this.entries.get(key);
      if (prev === undefined || rv > prev.rv) this.entries.set(key, entry);
      return;
    }
    // No answer, or a 5xx: it may have landed, or not.
    if (route === undefined) return;
    if (route.name === undefined && method === 'DELETE') {
      this.sweeps.push({ resource: route.resource, namespace: route.namespace, answeredAt: Number.MAX_SAFE_INTEGER });
      return;
    }
    let name = route.name;
    let namespace = route.namespace;
    if (method === 'POST' && name === undefined) {
      const b = parse(body) as { metadata?: Meta } | undefined;
      name = typeof b?.metadata?.name === 'string' && b.metadata.name !== '' ? b.metadata.name : undefined;
      namespace ??= typeof b?.metadata?.namespace === 'string' ? b.metadata.namespace : undefined;
      const gen = b?.metadata?.generateName;
      if (name === undefined && typeof gen === 'string' && namespace !== undefined) this.generated.add(`${route.resource}/${namespace}/${gen}`);
    }
    if (name !== undefined && namespace !== undefined) this.markUnknown(this.key(route.resource, namespace, name), `${status === undefined ? 'no answer' : `answered ${status}`} (${what})`);
  }

  markUnknown(key: string, why: string): void {
    if (!this.unknown.has(key)) this.unknown.set(key, why);
  }

  /** Compares the model with what the store lists now: `listed` holds every object of each model kind in each model namespace. */
  compare(listed: ReadonlyMap<string, readonly Record<string, unknown>[]>): Mismatch[] {
    const out: Mismatch[] = [];
    const seen = new Set<string>();
    for (const [collection, items] of listed) {
      const [resource, namespace] = collection.split('/') as [string, string];
      for (const item of items) {
        const meta = (item['metadata'] ?? {}) as Meta;
        const key = this.key(resource, namespace, meta.name ?? '');
        seen.add(key);
        if (this.unknown.has(key)) continue;
        const e = this.entries.get(key);
        const rv = Number(meta.resourceVersion);
        if (e === undefined) {
          if ([...this.generated].some((g) => key.startsWith(g))) continue;
          out.push({ key, problem: 'is in the store, but no accepted request made it', found: `rv ${meta.resourceVersion} ${short(canonical(item))}` });
          continue;
        }
        if (!e.present) {
          if (rv <= e.rv) out.push({ key, problem: `is in the store, but an accepted request deleted it (at ${e.rv}: ${e.what})`, found: `rv ${meta.resourceVersion}` });
          else out.push({ key, problem: `was deleted at ${e.rv} (${e.what}) and is back at ${rv}, which no accepted request made`, found: short(canonical(item)) });
          continue;
        }
        // A deletecollection after the last accepted write marks what it cannot delete yet
        // (finalizers, as the orphan policy adds): that is the sweep's doing, then the GC's.
        if (rv > e.rv && meta.deletionTimestamp !== undefined && this.sweeps.some((s) => s.resource === resource && (s.namespace === undefined || s.namespace === namespace) && e.sentAt <= s.answeredAt)) {
          this.markUnknown(key, `marked for deletion by a deletecollection at rv ${rv}`);
          continue;
        }
        if (rv > e.rv) out.push({ key, problem: `changed to rv ${rv} by a request that was not accepted (the last accepted one, ${e.what}, left rv ${e.rv})`, expected: e.json === undefined ? `rv ${e.rv}` : short(e.json), found: short(canonical(item)) });
        else if (rv < e.rv) out.push({ key, problem: `is at rv ${rv}, older than the accepted write at ${e.rv} (${e.what}): a write was lost`, found: short(canonical(item)) });
        else if (e.json !== undefined && e.json !== canonical(item)) out.push({ key, problem: `at rv ${rv} differs from what the accepted request (${e.what}) answered`, expected: short(e.json), found: short(canonical(item)) });
      }
    }
    for (const [key, e] of this.entries) {
      if (!e.present || seen.has(key) || this.unknown.has(key)) continue;
      const [resource, namespace] = key.split('/') as [string, string];
      if (!listed.has(`${resource}/${namespace}`)) continue;
      if (this.sweeps.some((s) => s.resource === resource && (s.namespace === undefined || s.namespace === namespace) && e.sentAt <= s.answeredAt)) continue;
      out.push({ key, problem: `is missing: an accepted request (${e.what}) left it at rv ${e.rv}`, expected: e.json === undefined ? `rv ${e.rv}` : short(e.json) });
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}

function short(s: string, max = 400): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars)`;
}

function parse(b: Buffer | undefined): unknown {
  if (b === undefined || b.byteLength === 0) return undefined;
  try {
    return JSON.parse(b.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The object an answer carries: itself, or (a Table) its row's metadata only. */
function objectOf(answer: unknown): { meta: Meta; value: unknown; whole: boolean; resource: string | undefined } | undefined {
  if (typeof answer !== 'object' || answer === null) return undefined;
  const a = answer as { kind?: string; metadata?: Meta; rows?: { object?: { metadata?: Meta } }[] };
  if (a.kind === 'Table') {
    const meta = a.rows?.[0]?.object?.metadata;
    return meta === undefined ? undefined : { meta, value: undefined, whole: false, resource: undefined };
  }
  if (a.kind === 'Status' || a.metadata === undefined) return undefined;
  return { meta: a.metadata, value: answer, whole: true, resource: a.kind === undefined ? undefined : MODEL_KIND_NAMES.get(a.kind) };
}

/** Whether the server took the request as a dry run (as server.ts and handlers.ts decide). */
function dryRun(method: string, target: string, body: Buffer | undefined): boolean {
  let q: URLSearchParams;
  try {
    q = new URL(target, 'https://flotilla').searchParams;
  } catch {
    return false;
  }
  if (q.getAll('dryRun').includes('All')) return true;
  if (method === 'DELETE') {
    const b = parse(body) as { dryRun?: unknown } | undefined;
    if (Array.isArray(b?.dryRun) && b.dryRun.includes('All')) return true;
  }
  return false;
}

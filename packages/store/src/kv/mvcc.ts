import { createHash } from 'node:crypto';
import sortedBtree from 'sorted-btree';
import { KvError, type KvErrorCode } from '../errors.ts';
import { boundsOf, checkKey, inBounds, MAX_VALUE_BYTES, type Bounds } from './keyrange.ts';
import { validateSession, validateWrite } from './validate.ts';
import type {
  Command,
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  WatchEvent,
  WriteRequest,
  WriteResponse,
} from './types.ts';

/** One version of a key: its value from `rev` on, or (kv undefined) its deletion at `rev`. */
interface Version {
  readonly rev: number;
  readonly kv: KeyValue | undefined;
}

/** What applying a write did: a response, or a deterministic refusal (same on every master). */
export type ApplyOutcome = { readonly ok: true; readonly response: WriteResponse } | { readonly ok: false; readonly code: KvErrorCode; readonly message: string };

/** The changes made at one revision, in order. */
export interface RevisionEvents {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

interface LeaseState {
  readonly ttl: number;
  readonly keys: Set<string>;
}

interface SessionState {
  /** Requests below this were acknowledged by the client; their responses are forgotten. */
  floor: number;
  readonly responses: Map<number, ApplyOutcome>;
}

const MAX_SESSIONS = 10_000;
/** Bytes a stored version costs beyond its key and value (what the quota counts). */
const VERSION_OVERHEAD = 64;

function versionBytes(key: string, v: Version): number {
  return key.length + (v.kv?.value.byteLength ?? 0) + VERSION_OVERHEAD;
}
const MAX_LEASE_TTL = 9_000_000;

// sorted-btree is CommonJS with a default export; under Node's ESM loader it arrives as a property.
const BTree = sortedBtree.default;

function refuse(code: KvErrorCode, message: string): ApplyOutcome {
  return { ok: false, code, message };
}

/**
 * The multi-version key-value state machine (the part of etcd's mvcc the cluster needs).
 * Every change gets a cluster-wide revision; old versions stay readable until compacted, and
 * the changes of each revision are kept as watch history. Applying is deterministic: the same
 * commands in the same order give the same store on every master.
 */
export class MvccStore {
  private readonly index = new BTree<string, Version[]>();
  private revisionNow = 1;
  private compactedAt = 0;
  private readonly history: RevisionEvents[] = [];
  private readonly leases = new Map<number, LeaseState>();
  private nextLeaseId = 1;
  private readonly sessions = new Map<string, SessionState>();
  private hash = '';
  private appliedAt = 0;
  /** What every kept version takes (keys, values, a fixed overhead): the size the quota limits. */
  private bytes = 0;
  /** Called after each revision that changed something (the watch fan-out hooks in here). */
  onRevision: ((batch: RevisionEvents) => void) | undefined;

  get revision(): number {
    return this.revisionNow;
  }

  get compactedRevision(): number {
    return this.compactedAt;
  }

  /** A digest of every Raft entry applied so far, in order (equal on masters that agree). */
  get appliedHash(): string {
    return this.hash;
  }

  get appliedIndex(): number {
    return this.appliedAt;
  }

  keyCount(): number {
    return this.index.size;
  }

  /**
   * The size of the data kept (every version not yet compacted away), the same on every
   * master: what the store's quota limits (etcd's database size).
   */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Folds one applied Raft entry (of any kind) into the applied digest. */
  noteApplied(index: number, term: number, data: Uint8Array): void {
    this.hash = createHash('sha256').update(this.hash).update(`${index}:${term}:`).update(data).digest('hex');
    this.appliedAt = index;
  }

  // ---------------------------------------------------------------------------------------
  // Writes.

  /** Applies one replicated command; a session's retry gets the first attempt's outcome. */
  /** Applies one log command; `term` is its entry's Raft term (checked against a fence). */
  applyCommand(entry: Command, term = 0): ApplyOutcome {
    // Masters validate before proposing, but the log is input too (a peer of another version,
    // or anyone holding the cluster secret, can put anything in it): a command that does not
    // validate is refused, the same way on every master, instead of breaking the apply loop.
    let cmd: Command;
    try {
      const session = validateSession(entry.session);
      cmd = { request: validateWrite(entry.request), ...(session === undefined ? {} : { session }) };
      if (entry.fence !== undefined && !(Number.isSafeInteger(entry.fence) && entry.fence > 0)) throw new KvError('invalid-request', 'fence must be a positive term');
    } catch (err) {
      if (err instanceof KvError) return refuse(err.code, `the log holds a malformed command, refused: ${err.message}`);
      throw err;
    }
    const s = cmd.session;
    const run = (): ApplyOutcome =>
      entry.fence === undefined || entry.fence === term
        ? this.execute(cmd.request)
        : refuse('fenced', `the write was made for the leadership of term ${entry.fence}, but reached the log in term ${term}: not applied`);
    if (s === undefined) return run();
    let session = this.sessions.get(s.client);
    if (session !== undefined) {
      this.sessions.delete(s.client); // re-inserted below: Map order is least recently used first
      if (s.seq < session.floor) {
        this.sessions.set(s.client, session);
        return refuse('invalid-request', `request ${s.seq} of client ${s.client} was already acknowledged`);
      }
      const cached = session.responses.get(s.seq);
      if (cached !== undefined) {
        this.sessions.set(s.client, session);
        return cached;
      }
    } else if (s.firstUnacked > 1) {
      // A session starts with request 1 outstanding. One that claims earlier requests were
      // acknowledged but is unknown here was forgotten (evicted below): a retry of an applied
      // write would run twice, so refuse rather than guess.
      return refuse('session-expired', `the cluster no longer remembers the session of client ${s.client} (it keeps the ${MAX_SESSIONS} most recently used); the write was not applied now, an earlier attempt may have been: check, then write again`);
    } else {
      session = { floor: 0, responses: new Map() };
    }
    if (s.firstUnacked > session.floor) {
      session.floor = s.firstUnacked;
      for (const seq of session.responses.keys()) if (seq < session.floor) session.responses.delete(seq);
    }
    const outcome = run();
    session.responses.set(s.seq, outcome);
    this.sessions.set(s.client, session);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return outcome;
  }

  private execute(req: WriteRequest): ApplyOutcome {
    try {
      switch (req.type) {
        case 'put': {
          const w = this.begin();
          const response = this.put(w, req);
          return { ok: true, response: { ...response, revision: this.commit(w) } };
        }
        case 'deleteRange': {
          const w = this.begin();
          const response = this.deleteRange(w, req);
          return { ok: true, response: { ...response, revision: this.commit(w) } };
        }
        case 'txn':
          return this.txn(req);
        case 'leaseGrant':
          return this.leaseGrant(req.ttl, req.id ?? 0);
        case 'leaseRevoke':
          return this.leaseRevoke(req.id);
        case 'leaseKeepAlive': {
          const lease = this.leases.get(req.id);
          if (lease === undefined) return refuse('lease-not-found', `lease ${req.id} does not exist`);
          return { ok: true, response: { id: req.id, ttl: lease.ttl } };
        }
        case 'compact':
          return this.compact(req.revision);
        default:
          return refuse('invalid-request', `unknown write type ${JSON.stringify((req as { type: unknown }).type)}`);
      }
    } catch (err) {
      if (err instanceof KvError) return refuse(err.code, err.message);
      // Commands are validated, so this is a bug; it happens alike on every master (same
      // entry, same state), so refusing keeps them identical where throwing would stop them all.
      return refuse('invalid-request', `the write could not be applied: ${(err as Error).message}`);
    }
  }

  /** A write in progress: every change it makes is at revision `rev`. */
  private begin(): { rev: number; events: WatchEvent[]; touched: Set<string> } {
    return { rev: this.revisionNow + 1, events: [], touched: new Set() };
  }

  private commit(w: { rev: number; events: WatchEvent[] }): number {
    if (w.events.length === 0) return this.revisionNow;
    this.revisionNow = w.rev;
    const batch = { revision: w.rev, events: w.events };
    this.history.push(batch);
    this.onRevision?.(batch);
    return w.rev;
  }

  private put(w: { rev: number; events: WatchEvent[]; touched: Set<string> }, req: PutRequest): PutResponse {
    checkKey(req.key, 'key');
    if (!(req.value instanceof Uint8Array)) throw new KvError('invalid-request', 'value must be bytes');
    if (req.value.byteLength > MAX_VALUE_BYTES) throw new KvError('too-large', `value is larger than ${MAX_VALUE_BYTES} bytes`);
    const lease = req.lease ?? 0;
    if (lease !== 0 && !this.leases.has(lease)) throw new KvError('lease-not-found', `lease ${lease} does not exist`);
    if (w.touched.has(req.key)) throw new KvError('invalid-request', `key "${req.key}" is written twice in one transaction`);
    w.touched.add(req.key);
    const versions = this.index.get(req.key);
    const prev = versions?.[versions.length - 1]?.kv;
    const kv: KeyValue = {
      key: req.key,
      value: req.value,
      createRevision: prev?.createRevision ?? w.rev,
      modRevision: w.rev,
      version: (prev?.version ?? 0) + 1,
      lease,
    };
    const version: Version = { rev: w.rev, kv };
    if (versions === undefined) this.index.set(req.key, [version]);
    else versions.push(version);
    this.bytes += versionBytes(req.key, version);
    if (prev !== undefined && prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(req.key);
    if (lease !== 0) this.leases.get(lease)!.keys.add(req.key);
    w.events.push(prev === undefined ? { type: 'put', kv } : { type: 'put', kv, prevKv: prev });
    return req.prevKv === true && prev !== undefined ? { revision: w.rev, prevKv: prev } : { revision: w.rev };
  }

  private deleteRange(w: { rev: number; events: WatchEvent[]; touched: Set<string> }, req: DeleteRangeRequest): DeleteRangeResponse {
    const bounds = boundsOf(req);
    const victims: KeyValue[] = [];
    this.scan(bounds, (_key, versions) => {
      const last = versions[versions.length - 1]!.kv;
      if (last !== undefined) victims.push(last);
    });
    for (const prev of victims) {
      w.touched.add(prev.key);
      const tombstone: Version = { rev: w.rev, kv: undefined };
      this.index.get(prev.key)!.push(tombstone);
      this.bytes += versionBytes(prev.key, tombstone);
      if (prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(prev.key);
      const deleted: KeyValue = { key: prev.key, value: new Uint8Array(0), createRevision: 0, modRevision: w.rev, version: 0, lease: 0 };
      w.events.push({ type: 'delete', kv: deleted, prevKv: prev });
    }
    return req.prevKv === true ? { revision: w.rev, deleted: victims.length, prevKvs: victims } : { revision: w.rev, deleted: victims.length };
  }

  private txn(req: TxnRequest): ApplyOutcome {
    if (!Array.isArray(req.compare) || !Array.isArray(req.success) || !Array.isArray(req.failure)) {
      return refuse('invalid-request', 'a transaction needs compare, success and failure lists');
    }
    const succeeded = req.compare.every((c) => this.holds(c));
    const ops = succeeded ? req.success : req.failure;
    // Everything that could refuse the transaction is checked before anything changes, so a
    // refused transaction leaves no trace.
    const refusal = this.checkOps(ops);
    if (refusal !== undefined) return refusal;
    const w = this.begin();
    const responses: ResponseOp[] = [];
    for (const op of ops) responses.push(this.runOp(w, op));
    const revision = this.commit(w);
    // Reads inside the transaction report the transaction's own revision.
    return { ok: true, response: { revision, succeeded, responses: responses.map((r) => ({ ...r, revision })) } };
  }

  private checkOps(ops: readonly RequestOp[]): ApplyOutcome | undefined {
    const putKeys = new Set<string>();
    const deletes: Bounds[] = [];
    for (const op of ops) {
      if (op.op === 'put') {
        checkKey(op.key, 'key');
        if (!(op.value instanceof Uint8Array)) return refuse('invalid-request', 'value must be bytes');
        if (op.value.byteLength > MAX_VALUE_BYTES) return refuse('too-large', `value is larger than ${MAX_VALUE_BYTES} bytes`);
        if ((op.lease ?? 0) !== 0 && !this.leases.has(op.lease!)) return refuse('lease-not-found', `lease ${op.lease} does not exist`);
        if (putKeys.has(op.key)) return refuse('invalid-request', `key "${op.key}" is written twice in one transaction`);
        putKeys.add(op.key);
      } else if (op.op === 'deleteRange') {
        deletes.push(boundsOf(op));
      } else if (op.op === 'range') {
        boundsOf(op);
        const at = op.revision ?? 0;
        if (!Number.isSafeInteger(at) || at < 0) return refuse('invalid-request', 'revision must be a non-negative integer');
        if (at > this.revisionNow) return refuse('future-revision', `revision ${at} is newer than the store (${this.revisionNow})`);
        if (at !== 0 && at < this.compactedAt) return refuse('compacted', `revision ${at} was compacted (oldest readable is ${this.compactedAt})`);
      } else {
        return refuse('invalid-request', `unknown transaction operation ${JSON.stringify((op as { op: unknown }).op)}`);
      }
    }
    for (const key of putKeys) {
      if (deletes.some((b) => inBounds(key, b))) return refuse('invalid-request', `key "${key}" is both written and deleted in one transaction`);
    }
    return undefined;
  }

  private runOp(w: { rev: number; events: WatchEvent[]; touched: Set<string> }, op: RequestOp): ResponseOp {
    switch (op.op) {
      case 'put':
        return { op: 'put', ...this.put(w, op) };
      case 'deleteRange':
        return { op: 'deleteRange', ...this.deleteRange(w, op) };
      case 'range':
        // At the revision it names (checked in checkOps), else seeing the transaction's own writes so far.
        return { op: 'range', ...this.rangeAt(op, (op.revision ?? 0) > 0 ? op.revision! : this.revisionNow + (w.events.length > 0 ? 1 : 0)) };
      default:
        throw new KvError('invalid-request', `unknown transaction operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  private holds(c: Compare): boolean {
    checkKey(c.key, 'compare key');
    const versions = this.index.get(c.key);
    const kv = versions?.[versions.length - 1]?.kv;
    let order: number;
    if (c.target === 'value') {
      if (!(c.value instanceof Uint8Array)) throw new KvError('invalid-request', 'a value comparison needs bytes');
      if (kv === undefined) return c.result === 'notEqual' || c.result === 'less';
      order = Buffer.compare(Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength), Buffer.from(c.value.buffer, c.value.byteOffset, c.value.byteLength));
    } else {
      if (typeof c.value !== 'number') throw new KvError('invalid-request', `a ${c.target} comparison needs a number`);
      const actual = kv === undefined ? 0 : c.target === 'version' ? kv.version : c.target === 'createRevision' ? kv.createRevision : c.target === 'modRevision' ? kv.modRevision : kv.lease;
      order = actual - c.value;
    }
    switch (c.result) {
      case 'equal':
        return order === 0;
      case 'notEqual':
        return order !== 0;
      case 'less':
        return order < 0;
      case 'greater':
        return order > 0;
      default:
        throw new KvError('invalid-request', `unknown comparison ${JSON.stringify(c.result)}`);
    }
  }

  private leaseGrant(ttl: number, id: number): ApplyOutcome {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_LEASE_TTL) return refuse('invalid-request', `ttl must be a whole number of seconds from 1 to ${MAX_LEASE_TTL}`);
    if (!Number.isSafeInteger(id) || id < 0) return refuse('invalid-request', 'lease id must be a positive integer');
    if (id !== 0 && this.leases.has(id)) return refuse('invalid-request', `lease ${id} already exists`);
    let leaseId = id;
    if (leaseId === 0) {
      while (this.leases.has(this.nextLeaseId)) this.nextLeaseId++;
      leaseId = this.nextLeaseId++;
    }
    this.leases.set(leaseId, { ttl, keys: new Set() });
    return { ok: true, response: { id: leaseId, ttl, revision: this.revisionNow } };
  }

  private leaseRevoke(id: number): ApplyOutcome {
    const lease = this.leases.get(id);
    if (lease === undefined) return refuse('lease-not-found', `lease ${id} does not exist`);
    const w = this.begin();
    let deleted = 0;
    for (const key of [...lease.keys].sort()) deleted += this.deleteRange(w, { key }).deleted;
    this.leases.delete(id);
    return { ok: true, response: { revision: this.commit(w), deleted } };
  }

  private compact(revision: number): ApplyOutcome {
    if (!Number.isSafeInteger(revision) || revision < 1) return refuse('invalid-request', 'compaction revision must be a positive integer');
    if (revision <= this.compactedAt) return refuse('compacted', `revision ${revision} is already compacted (compacted at ${this.compactedAt})`);
    if (revision > this.revisionNow) return refuse('future-revision', `revision ${revision} is newer than the store (${this.revisionNow})`);
    const drop: string[] = [];
    this.index.forEachPair((key, versions) => {
      // Keep the version visible at `revision` and everything after it.
      let keep = 0;
      for (let i = versions.length - 1; i >= 0; i--) {
        if (versions[i]!.rev <= revision) {
          keep = i;
          break;
        }
      }
      if (keep > 0) for (const v of versions.splice(0, keep)) this.bytes -= versionBytes(key, v);
      if (versions[0]!.kv === undefined && versions[0]!.rev <= revision) this.bytes -= versionBytes(key, versions.shift()!);
      if (versions.length === 0) drop.push(key);
    });
    for (const key of drop) this.index.delete(key);
    let cut = 0;
    while (cut < this.history.length && this.history[cut]!.revision < revision) cut++;
    this.history.splice(0, cut);
    this.compactedAt = revision;
    return { ok: true, response: { revision } };
  }

  // ---------------------------------------------------------------------------------------
  // Reads.

  /** Reads keys at the current revision, or at `req.revision`. Throws KvError. */
  range(req: RangeRequest): RangeResponse {
    const at = req.revision ?? 0;
    if (!Number.isSafeInteger(at) || at < 0) throw new KvError('invalid-request', 'revision must be a non-negative integer');
    if (at > this.revisionNow) throw new KvError('future-revision', `revision ${at} is newer than the store (${this.revisionNow})`);
    if (at !== 0 && at < this.compactedAt) throw new KvError('compacted', `revision ${at} was compacted (oldest readable is ${this.compactedAt})`);
    return this.rangeAt(req, at === 0 ? this.revisionNow : at);
  }

  private rangeAt(req: RangeRequest, at: number): RangeResponse {
    const limit = req.limit ?? 0;
    if (!Number.isSafeInteger(limit) || limit < 0) throw new KvError('invalid-request', 'limit must be a non-negative integer');
    const bounds = boundsOf(req);
    const kvs: KeyValue[] = [];
    let count = 0;
    this.scan(bounds, (_key, versions) => {
      const kv = visibleAt(versions, at);
      if (kv === undefined) return;
      count++;
      if (req.countOnly === true || (limit > 0 && kvs.length >= limit)) return;
      kvs.push(req.keysOnly === true ? { ...kv, value: new Uint8Array(0) } : kv);
    });
    return { kvs, count, more: limit > 0 && count > limit, revision: this.revisionNow };
  }

  private scan(bounds: Bounds, visit: (key: string, versions: Version[]) => void): void {
    if (bounds.single) {
      const versions = this.index.get(bounds.start);
      if (versions !== undefined) visit(bounds.start, versions);
      return;
    }
    for (const [key, versions] of this.index.entries(bounds.start)) {
      if (bounds.end !== undefined && key >= bounds.end) break;
      visit(key, versions);
    }
  }

  /**
   * The events from `startRevision` up to now that touch `range`, for a watch to replay.
   * Throws KvError `compacted` when that history is gone.
   */
  eventsSince(startRevision: number, bounds: Bounds): RevisionEvents[] {
    if (startRevision < this.compactedAt) {
      throw new KvError('compacted', `revision ${startRevision} was compacted (the watch can start at ${this.compactedAt} or later)`);
    }
    const out: RevisionEvents[] = [];
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.revision < startRevision) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.history.length; i++) {
      const batch = this.history[i]!;
      const events = batch.events.filter((e) => inBounds(e.kv.key, bounds));
      if (events.length > 0) out.push({ revision: batch.revision, events });
    }
    return out;
  }

  leaseTtl(id: number): number | undefined {
    return this.leases.get(id)?.ttl;
  }

  leaseIds(): number[] {
    return [...this.leases.keys()];
  }

  leaseKeys(id: number): string[] {
    return [...(this.leases.get(id)?.keys ?? [])].sort();
  }

  // ---------------------------------------------------------------------------------------
  // Snapshots.

  /** Everything needed to rebuild this store elsewhere, as plain data. */
  toSnapshot(): MvccSnapshot {
    const keys: [string, Version[]][] = [];
    // Copies of the version lists: the snapshot must not change as the store goes on.
    this.index.forEachPair((k, v) => {
      keys.push([k, v.slice()]);
    });
    return {
      version: 1,
      revision: this.revisionNow,
      compacted: this.compactedAt,
      nextLeaseId: this.nextLeaseId,
      hash: this.hash,
      appliedIndex: this.appliedAt,
      keys,
      history: this.history.slice(),
      leases: [...this.leases].map(([id, l]) => [id, l.ttl, [...l.keys]]),
      sessions: [...this.sessions].map(([client, s]) => [client, s.floor, [...s.responses]]),
    };
  }

  static fromSnapshot(s: MvccSnapshot): MvccStore {
    if (s.version !== 1) throw new Error(`unknown state machine snapshot version ${String(s.version)}`);
    const store = new MvccStore();
    store.revisionNow = s.revision;
    store.compactedAt = s.compacted;
    store.nextLeaseId = s.nextLeaseId;
    store.hash = s.hash;
    store.appliedAt = s.appliedIndex;
    for (const [k, v] of s.keys) {
      store.index.set(k, v.slice());
      for (const version of v) store.bytes += versionBytes(k, version);
    }
    for (const batch of s.history) store.history.push(batch);
    for (const [id, ttl, keys] of s.leases) store.leases.set(id, { ttl, keys: new Set(keys) });
    for (const [client, floor, responses] of s.sessions) store.sessions.set(client, { floor, responses: new Map(responses) });
    return store;
  }
}

/** The state machine as plain data (encoded with msgpack into Raft snapshots). */
export interface MvccSnapshot {
  readonly version: number;
  readonly revision: number;
  readonly compacted: number;
  readonly nextLeaseId: number;
  readonly hash: string;
  readonly appliedIndex: number;
  readonly keys: readonly [string, Version[]][];
  readonly history: readonly RevisionEvents[];
  readonly leases: readonly [number, number, string[]][];
  readonly sessions: readonly [string, number, [number, ApplyOutcome][]][];
}

function visibleAt(versions: readonly Version[], at: number): KeyValue | undefined {
  for (let i = versions.length - 1; i >= 0; i--) {
    const v = versions[i]!;
    if (v.rev <= at) return v.kv;
  }
  return undefined;
}

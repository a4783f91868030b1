import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse, Parser, YAMLParseError } from 'yaml';

/**
 * A cluster file describes one cluster: its secret, its Raft timing, who may use its API, and
 * its masters (name, peer, client and API addresses, data directory). Example
 * (cluster-configs/three.yaml):
 *
 *   cluster: three
 *   secret: …at least 16 characters…        # or secretFile: path/to/file
 *   raft: { tickMs: 25, electionTicks: 12, heartbeatTicks: 2 }
 *   tokens:                                  # or tokenFile: a file holding this same list
 *     - { name: admin, token: …at least 16 characters…, role: admin }   # or role: viewer
 *   joinToken: …at least 16 characters…     # what worker agents present to join
 *   masters:
 *     - { name: m1, peer: 127.0.0.1:7101, client: 127.0.0.1:7201, api: 127.0.0.1:9101, data: ../.data/three/m1 }
 *
 * Optional: `insecureHttp: true` (serve the API over plain HTTP: throwaway clusters only),
 * `store: { historyRevisions: N, quotaBytes: B }` (revisions kept for watches and paged lists,
 * default 20,000; the most data the store keeps, default 2 GiB, a fifth of the data disk or a sixteenth of memory, the least), `apiServer: { maxRequestsInFlight: N, maxMutatingRequestsInFlight: M, maxWatches, maxWatchesPerUser,
 * requestTimeoutSeconds, maxConnections }` (requests each master's API serves at once before they
 * wait fairly by user and then get 429, default 400 reads and 200 changes, as Kubernetes; watches
 * and log streams per master (4000) and per user (250); the request timeout (60 s); open
 * connections (4096)), `nodeLifecycle: { gracePeriodSeconds: 5, evictionSeconds: 5 }` (a node whose
 * Lease is not renewed for the grace period is marked unreachable; its pods are deleted and
 * replaced elsewhere that much later; Kubernetes uses 50 s and 300 s), `controlPlane: false`
 * (the leader runs no scheduler or controllers: the API and the store alone, as a
 * kube-apiserver without kube-scheduler and kube-controller-manager). Optional per master: `api` (no API without it), `peerListen` (bind here, when
 * others reach `peer` through a proxy) and `join: true` (not a founder: it starts empty and is
 * added with `flotilla member add`). Relative paths are relative to the cluster file.
 *
 * Optional `workers:` lists worker agents (`flotilla agent --config FILE --name w1` runs one;
 * `flotilla up` starts those listed): `{ name: w1, address: 127.0.0.2, data: ../.data/w1 }`
 * plus optional `labels: {k: v}`, `taints: [{key, value, effect}]`, `reserve: {cpu: 100m,
 * memory: 256Mi}` (kept back from the machine's capacity), `podPorts: 20000-29999` (where the
 * agent assigns pods their ports) and `maxPods: 110`. Several workers may share a machine, each
 * on its own address in 127.0.0.0/8; across machines each uses its machine's own address.
 */
export interface ClusterFile {
  readonly path: string;
  readonly cluster: string;
  readonly secret: string;
  readonly raft: RaftTiming;
  readonly masters: readonly MasterSpec[];
  /** API users: bearer tokens with their role. */
  readonly tokens: readonly ApiToken[];
  /** What agents present to join the cluster (and get a node credential); none: no agents. */
  readonly joinToken: string | undefined;
  /** Serve the API over plain HTTP instead of HTTPS (only for throwaway local clusters). */
  readonly insecureHttp: boolean;
  /** Store tuning. */
  readonly store: StoreTuning;
  /** API server limits. */
  readonly apiServer: ApiServerTuning;
  /** Whether the leader runs the scheduler and controllers (default true). */
  readonly controlPlane: boolean;
  /** Node lifecycle timings, in seconds. */
  readonly nodeLifecycle: { readonly gracePeriodSeconds: number; readonly evictionSeconds: number };
  /** Worker agents. */
  readonly workers: readonly WorkerSpec[];
}

export interface WorkerSpec {
  readonly name: string;
  /** The node's address: its pods listen there and its proxy accepts there. */
  readonly address: string;
  readonly data: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly { readonly key: string; readonly value?: string; readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  readonly reserve: { readonly cpu?: string; readonly memory?: string };
  readonly podPorts: { readonly from: number; readonly to: number };
  readonly maxPods: number;
}

export interface ApiServerTuning {
  /** Reads served at once (watches not counted) before more wait, then get 429. */
  readonly maxRequestsInFlight: number;
  /** Changes served at once before more wait, then get 429. */
  readonly maxMutatingRequestsInFlight: number;
  /** Watches and log streams one master serves at once … */
  readonly maxWatches: number;
  /** … and per user. */
  readonly maxWatchesPerUser: number;
  /** A request (not a watch or log stream) is answered 504 after this long. */
  readonly requestTimeoutSeconds: number;
  /** Connections one master's API keeps open at once. */
  readonly maxConnections: number;
}

export interface StoreTuning {
  /**
   * Revisions of history kept for watches and paged lists (like etcd's revision-based
   * auto-compaction): a watch or continue token older than this gets 410 Gone.
   */
  readonly historyRevisions: number;
  /**
   * The most data the store keeps, in bytes (etcd's --quota-backend-bytes); 0 (the default)
   * picks it on each master from its data directory's disk and the machine's memory (see defaultQuota).
   */
  readonly quotaBytes: number;
}

export interface ApiToken {
  readonly name: string;
  readonly token: string;
  readonly role: 'admin' | 'viewer';
}

export interface RaftTiming {
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
}

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface MasterSpec {
  readonly name: string;
  readonly peer: Address;
  readonly peerListen: Address;
  readonly client: Address;
  /** Where this master serves the Kubernetes API; none: it serves no API. */
  readonly api: Address | undefined;
  readonly data: string;
  readonly join: boolean;
}

/**
 * Defaults chosen for sub-second failover: a follower that misses 300–600 ms of heartbeats
 * (sent every 50 ms) campaigns, so a dead leader is replaced well within a second.
 */
export const DEFAULT_TIMING: RaftTiming = { tickMs: 25, electionTicks: 12, heartbeatTicks: 2 };

/** A problem with a cluster file, said in one sentence. */
export class ClusterFileError extends Error {
  override readonly name = 'ClusterFileError';
}

type Obj = Record<string, unknown>;

/** The most a cluster file (or token file) may hold; real ones are a few KiB. */
export const MAX_CLUSTER_FILE_BYTES = 1024 * 1024;
/** How deeply a cluster file may nest; its deepest field is five levels down. */
export const MAX_CLUSTER_FILE_DEPTH = 64;

/**
 * Parses YAML from a file an operator gave, or fails with one sentence. The yaml package
 * recurses as deep as the text nests (a RangeError past a few thousand levels, and V8 aborted
 * the process out of memory on 50,000 open brackets), so the nesting is measured first, without
 * recursion (as far as the yaml package's own parser goes without it); its aliases are bounded
 * (it throws a ReferenceError past them).
 */
function parseYaml(text: string, fail: (msg: string) => never): unknown {
  if (Buffer.byteLength(text) > MAX_CLUSTER_FILE_BYTES) fail(`is larger than ${MAX_CLUSTER_FILE_BYTES} bytes, the limit`);
  let measured: { depth: number; line: number };
  try {
    measured = yamlDepth(text, MAX_CLUSTER_FILE_DEPTH);
  } catch (err) {
    // The syntax tree's parser recurses too when it closes many levels at once.
    if (err instanceof RangeError) fail(`nests too deeply to read (far more than ${MAX_CLUSTER_FILE_DEPTH} levels, the limit)`);
    throw err;
  }
  const { depth, line } = measured;
  if (depth > MAX_CLUSTER_FILE_DEPTH) fail(`nests more than ${MAX_CLUSTER_FILE_DEPTH} levels deep at line ${line}; the limit is ${MAX_CLUSTER_FILE_DEPTH}`);
  try {
    return parse(text, { maxAliasCount: 100 });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const line = err.linePos?.[0]?.line;
      fail(`is not valid YAML${line === undefined ? '' : ` (line ${line})`}: ${err.message.split('\n')[0]}`);
    }
    if (err instanceof ReferenceError && /excessive alias count/i.test(err.message)) fail('is not valid YAML: it uses aliases to build more than 100 nodes, the limit');
    fail(`is not valid YAML: ${(err as Error)?.message ?? String(err)}`);
  }
}

/**
 * How deeply YAML text nests, as collections holding collections, and the line where it first
 * passes `limit`. Measured on the yaml package's concrete syntax tree, which it builds with a
 * stack of its own (50,000 open brackets parse in under half a second), walked here without
 * recursion. That parser still recurses when one line closes thousands of levels at once: a
 * RangeError then, for the caller to report.
 */
export function yamlDepth(text: string, limit: number): { depth: number; line: number } {
  let depth = 0;
  for (const doc of new Parser().parse(text)) {
    const work: [unknown, number][] = [[doc, 0]];
    while (work.length > 0) {
      const [token, d] = work.pop()!;
      if (typeof token !== 'object' || token === null) continue;
      const t = token as { items?: { key?: unknown; value?: unknown }[]; value?: unknown; offset?: number };
      if (Array.isArray(t.items)) {
        depth = Math.max(depth, d + 1);
        if (depth > limit) return { depth, line: text.slice(0, t.offset ?? 0).split('\n').length };
        for (const item of t.items) {
          work.push([item.key, d + 1]);
          work.push([item.value, d + 1]);
        }
      }
      work.push([t.value, d]);
    }
  }
  return { depth, line: text.split('\n').length };
}

export function loadClusterFile(path: string): ClusterFile {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ClusterFileError(`cannot read the cluster file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseClusterFile(text, abs);
}

export function parseClusterFile(text: string, path: string): ClusterFile {
  const where = `cluster file ${path}`;
  // Declared with its type so TypeScript knows a call never returns (control-flow narrowing).
  const fail: (msg: string) => never = (msg) => {
    throw new ClusterFileError(`${where}: ${msg}`);
  };
  const doc = parseYaml(text, fail);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('must be a YAML mapping with "cluster", "secret" and "masters"');
  const o = doc as Obj;
  const known = new Set(['cluster', 'secret', 'secretFile', 'raft', 'masters', 'tokens', 'tokenFile', 'joinToken', 'insecureHttp', 'store', 'apiServer', 'nodeLifecycle', 'controlPlane', 'workers']);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(`has an unknown field "${k}" (known: ${[...known].join(', ')})`);
  const cluster = o['cluster'];
  if (typeof cluster !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(cluster)) fail('needs "cluster": a lower-case name');
  const base = dirname(path);
  let secret: string;
  if (o['secretFile'] !== undefined) {
    if (o['secret'] !== undefined) fail('give either "secret" or "secretFile", not both');
    if (typeof o['secretFile'] !== 'string') fail('"secretFile" must be a path');
    const file = resolvePath(base, o['secretFile']);
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (err) {
      fail(`cannot read secretFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    if (typeof o['secret'] !== 'string') fail('needs "secret" (the shared cluster secret) or "secretFile"');
    secret = o['secret'];
  }
  if (secret.length < 16) fail('the secret must be at least 16 characters long');
  const raft = timing(o['raft'], fail);
  if (!Array.isArray(o['masters']) || o['masters'].length === 0) fail('needs "masters": a list of at least one master');
  const masters = (o['masters'] as unknown[]).map((m, i) => master(m, i, base, fail));
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  const dirs = new Map<string, string>();
  for (const m of masters) {
    if (names.has(m.name)) fail(`two masters are named ${m.name}`);
    names.add(m.name);
    for (const a of new Set([key(m.peer), key(m.peerListen), key(m.client), ...(m.api === undefined ? [] : [key(m.api)])])) {
      const other = addresses.get(a);
      if (other !== undefined) fail(`${other} and ${m.name} both use ${a}`);
      addresses.set(a, m.name);
    }
    const otherDir = dirs.get(m.data);
    if (otherDir !== undefined) fail(`${otherDir} and ${m.name} both use the data directory ${m.data}`);
    dirs.set(m.data, m.name);
  }
  if (masters.every((m) => m.join)) fail('at least one master must found the cluster (not every master can have join: true)');
  const tokens = apiTokens(o, base, fail);
  const joinToken = o['joinToken'];
  if (joinToken !== undefined && (typeof joinToken !== 'string' || joinToken.length < 16)) fail('"joinToken" must be a string of at least 16 characters');
  if (o['insecureHttp'] !== undefined && typeof o['insecureHttp'] !== 'boolean') fail('"insecureHttp" must be true or false');
  return { path, cluster, secret, raft, masters, tokens, joinToken: joinToken as string | undefined, insecureHttp: o['insecureHttp'] === true, store: storeTuning(o['store'], fail), apiServer: apiServerTuning(o['apiServer'], fail), nodeLifecycle: nodeLifecycle(o['nodeLifecycle'], fail), controlPlane: controlPlane(o['controlPlane'], fail), workers: workers(o['workers'], dirname(path), masters, fail) };
}

export function findWorker(file: ClusterFile, name: string): WorkerSpec {
  const w = file.workers.find((x) => x.name === name);
  if (w === undefined) {
    throw new ClusterFileError(`cluster file ${file.path} has no worker named ${name}; ${file.workers.length === 0 ? 'it lists no workers (add a "workers:" section, or give --address and --data)' : `it has ${file.workers.map((x) => x.name).join(', ')}`}`);
  }
  return w;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function workers(v: unknown, base: string, masters: readonly MasterSpec[], fail: (m: string) => never): WorkerSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail('"workers" must be a list, e.g. workers: [{ name: w1, address: 127.0.0.2, data: ../.data/w1 }]');
  const seen = new Set<string>();
  return v.map((x: unknown, i: number) => {
    const at = `workers[${i}]`;
    if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(`${at} must be a mapping with name, address and data`);
    const o = x as Obj;
    const known = ['name', 'address', 'data', 'labels', 'taints', 'reserve', 'podPorts', 'maxPods'];
    for (const k of Object.keys(o)) if (!known.includes(k)) fail(`${at} has an unknown field "${k}" (known: ${known.join(', ')})`);
    const name = o['name'];
    if (typeof name !== 'string' || name.length > 253 || !NAME.test(name)) fail(`${at}.name must be a node name (lower-case letters, digits, '-' and '.')`);
    if (seen.has(name) || masters.some((m) => m.name === name)) fail(`${at}.name "${name}" is used twice`);
    seen.add(name);
    const address = o['address'];
    if (typeof address !== 'string' || !IPV4.test(address)) fail(`${at}.address must be an IPv4 address (e.g. 127.0.0.2 for a worker on this machine)`);
    const data = o['data'];
    if (typeof data !== 'string' || data === '') fail(`${at}.data must be a directory path`);
    const labels = o['labels'] ?? {};
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((l) => typeof l !== 'string')) fail(`${at}.labels must be a mapping of strings`);
    const taints = o['taints'] ?? [];
    if (!Array.isArray(taints)) fail(`${at}.taints must be a list of {key, value, effect}`);
    const effects = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
    for (const t of taints as Obj[]) {
      if (typeof t !== 'object' || t === null || typeof t['key'] !== 'string' || (t['value'] !== undefined && typeof t['value'] !== 'string') || !effects.includes(t['effect'] as string)) fail(`${at}.taints: each taint needs a key, an optional value and an effect (${effects.join(', ')})`);
    }
    const reserve = o['reserve'] ?? {};
    if (typeof reserve !== 'object' || reserve === null || Array.isArray(reserve) || Object.entries(reserve).some(([k, q]) => !['cpu', 'memory'].includes(k) || typeof q !== 'string')) fail(`${at}.reserve must be a mapping like { cpu: 100m, memory: 256Mi }`);
    const ports = o['podPorts'] ?? '20000-29999';
    const m = typeof ports === 'string' ? /^(\d+)-(\d+)$/.exec(ports) : null;
    const from = Number(m?.[1]);
    const to = Number(m?.[2]);
    if (m === null || from < 1024 || to > 65535 || from > to) fail(`${at}.podPorts must be a range like 20000-29999 within 1024-65535`);
    const maxPods = o['maxPods'] ?? 110;
    if (typeof maxPods !== 'number' || !Number.isInteger(maxPods) || maxPods < 1 || maxPods > 10_000) fail(`${at}.maxPods must be an integer from 1 to 10000`);
    return { name, address, data: resolvePath(base, data), labels: labels as Record<string, string>, taints: taints as WorkerSpec['taints'], reserve: reserve as WorkerSpec['reserve'], podPorts: { from, to }, maxPods };
  });
}

export function findMaster(file: ClusterFile, name: string): MasterSpec {
  const m = file.masters.find((x) => x.name === name);
  if (m === undefined) {
    throw new ClusterFileError(`cluster file ${file.path} has no master named ${name}; it has ${file.masters.map((x) => x.name).join(', ')}`);
  }
  return m;
}

export function peerUrl(m: MasterSpec): string {
  return `ws://${m.peer.host}:${m.peer.port}/raft`;
}

export function clientUrl(m: MasterSpec): string {
  return `ws://${m.client.host}:${m.client.port}`;
}

function key(a: Address): string {
  return `${a.host}:${a.port}`;
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

function timing(v: unknown, fail: (m: string) => never): RaftTiming {
  if (v === undefined) return DEFAULT_TIMING;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('"raft" must be a mapping of tickMs, electionTicks and heartbeatTicks');
  const o = v as Obj;
  const int = (name: keyof RaftTiming, min: number, max: number): number => {
    const x = o[name] ?? DEFAULT_TIMING[name];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) fail(`raft.${name} must be an integer from ${min} to ${max}`);
    return x as number;
  };
  for (const k of Object.keys(o)) if (!['tickMs', 'electionTicks', 'heartbeatTicks'].includes(k)) fail(`raft has an unknown field "${k}"`);
  const t = { tickMs: int('tickMs', 1, 10_000), electionTicks: int('electionTicks', 2, 1000), heartbeatTicks: int('heartbeatTicks', 1, 999) };
  if (t.heartbeatTicks >= t.electionTicks) fail('raft.heartbeatTicks must be less than raft.electionTicks');
  return t;
}

/** A section of numeric settings, each with its default and allowed range. */
type NumberFields<K extends string> = Record<K, { readonly default: number; readonly min: number; readonly max: number; readonly integer: boolean; readonly unit?: string }>;

function numbers<K extends string>(v: unknown, section: string, fields: NumberFields<K>, fail: (m: string) => never): Record<K, number> {
  const names = Object.keys(fields) as K[];
  const example = names.map((k) => `${k}: ${fields[k].default}`).join(', ');
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) fail(`"${section}" must be a mapping, e.g. ${section}: { ${example} }`);
  const o = (v ?? {}) as Obj;
  for (const k of Object.keys(o)) if (!(names as string[]).includes(k)) fail(`${section} has an unknown field "${k}" (known: ${names.join(', ')})`);
  const out = {} as Record<K, number>;
  for (const k of names) {
    const f = fields[k];
    const x = o[k] ?? f.default;
    if (typeof x !== 'number' || !Number.isFinite(x) || (f.integer && !Number.isInteger(x)) || x < f.min || x > f.max) {
      fail(`${section}.${k} must be ${f.integer ? 'an integer' : `a number${f.unit === undefined ? '' : ` of ${f.unit}`}`} from ${f.min} to ${f.max}`);
    }
    out[k] = x as number;
  }
  return out;
}

function storeTuning(v: unknown, fail: (m: string) => never): StoreTuning {
  const t = numbers(v, 'store', { historyRevisions: { default: 20_000, min: 100, max: 10_000_000, integer: true }, quotaBytes: { default: 0, min: 0, max: 2 ** 46, integer: true } }, fail);
  if (t.quotaBytes > 0 && t.quotaBytes < MIN_QUOTA) fail(`store.quotaBytes must be 0 (chosen from the disk) or at least ${MIN_QUOTA} (1 MiB)`);
  return t;
}

const MIN_QUOTA = 1024 * 1024;

/**
 * The quota a master uses when the file gives none: etcd's default of 2 GiB, but never more
 * than a fifth of the data directory's file system, since the disk also holds the log since the
 * last snapshot, the snapshot being replaced and LevelDB's compactions while it runs; and never
 * more than a sixteenth of the machine's memory, since every master holds the whole state (and
 * its history) in memory, at two to three times its stored size, and a laptop runs several;
 * nor more than a quarter of the process's heap limit, which a master would otherwise reach first.
 */
export function defaultQuota(fileSystemBytes: number, memoryBytes = totalmem(), heapBytes = getHeapStatistics().heap_size_limit): number {
  return Math.max(MIN_QUOTA, Math.min(2 * 1024 ** 3, Math.floor(fileSystemBytes / 5), Math.floor(memoryBytes / 16), Math.floor(heapBytes / 4)));
}

function apiServerTuning(v: unknown, fail: (m: string) => never): ApiServerTuning {
  const limit = { min: 1, max: 100_000, integer: true };
  return numbers(
    v,
    'apiServer',
    {
      maxRequestsInFlight: { default: 400, ...limit },
      maxMutatingRequestsInFlight: { default: 200, ...limit },
      maxWatches: { default: 4000, ...limit },
      maxWatchesPerUser: { default: 250, ...limit },
      requestTimeoutSeconds: { default: 60, min: 1, max: 3600, integer: false, unit: 'seconds' },
      maxConnections: { default: 4096, min: 16, max: 1_000_000, integer: true },
    },
    fail,
  );
}

function nodeLifecycle(v: unknown, fail: (m: string) => never): ClusterFile['nodeLifecycle'] {
  const seconds = { default: 5, min: 0.1, max: 86_400, integer: false, unit: 'seconds' };
  return numbers(v, 'nodeLifecycle', { gracePeriodSeconds: seconds, evictionSeconds: seconds }, fail);
}

function controlPlane(v: unknown, fail: (m: string) => never): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'boolean') fail('controlPlane must be true or false');
  return v as boolean;
}

function address(v: unknown, what: string, fail: (m: string) => never): Address {
  if (typeof v !== 'string') fail(`${what} must be an address like 127.0.0.1:7101`);
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(v as string);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) fail(`${what} must be host:port with a port from 1 to 65535, got "${String(v)}"`);
  return { host: m![1]!.replace(/^\[|\]$/g, ''), port };
}

function master(v: unknown, i: number, base: string, fail: (m: string) => never): MasterSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`masters[${i}] must be a mapping with name, peer, client and data`);
  const o = v as Obj;
  const name = o['name'];
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) fail(`masters[${i}] needs "name": lower-case letters, digits and '-'`);
  const who = `masters[${i}] (${name as string})`;
  const known = new Set(['name', 'peer', 'peerListen', 'client', 'api', 'data', 'join']);
  for (const k of Object.keys(o)) if (!known.has(k)) fail(`${who} has an unknown field "${k}" (known: ${[...known].join(', ')})`);
  for (const f of ['peer', 'client', 'data']) if (o[f] === undefined) fail(`${who} has no "${f}"`);
  const peer = address(o['peer'], `${who} peer`, fail);
  const peerListen = o['peerListen'] === undefined ? peer : address(o['peerListen'], `${who} peerListen`, fail);
  if (typeof o['data'] !== 'string' || o['data'] === '') fail(`${who} data must be a directory path`);
  if (o['join'] !== undefined && typeof o['join'] !== 'boolean') fail(`${who} join must be true or false`);
  return {
    name: name as string,
    peer,
    peerListen,
    client: address(o['client'], `${who} client`, fail),
    api: o['api'] === undefined ? undefined : address(o['api'], `${who} api`, fail),
    data: resolvePath(base, o['data'] as string),
    join: o['join'] === true,
  };
}

function apiTokens(o: Obj, base: string, fail: (m: string) => never): ApiToken[] {
  let list: unknown = o['tokens'];
  if (o['tokenFile'] !== undefined) {
    if (list !== undefined) fail('give either "tokens" or "tokenFile", not both');
    if (typeof o['tokenFile'] !== 'string') fail('"tokenFile" must be a path');
    const file = resolvePath(base, o['tokenFile']);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      fail(`cannot read tokenFile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    list = parseYaml(text, (m) => fail(`tokenFile ${file} ${m}`));
  }
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail('"tokens" must be a list of {name, token, role}');
  const seen = new Set<string>();
  return (list as unknown[]).map((t, i) => {
    if (typeof t !== 'object' || t === null) fail(`tokens[${i}] must be a mapping with name, token and role`);
    const x = t as Obj;
    if (typeof x['name'] !== 'string' || x['name'] === '') fail(`tokens[${i}] needs a "name"`);
    if (typeof x['token'] !== 'string' || x['token'].length < 16) fail(`tokens[${i}] (${String(x['name'])}) needs a "token" of at least 16 characters`);
    if (x['role'] !== 'admin' && x['role'] !== 'viewer') fail(`tokens[${i}] (${String(x['name'])}) role must be admin or viewer`);
    if (seen.has(x['token'] as string)) fail(`tokens[${i}] (${String(x['name'])}) reuses another user's token`);
    seen.add(x['token'] as string);
    return { name: x['name'] as string, token: x['token'] as string, role: x['role'] as 'admin' | 'viewer' };
  });
}

export function apiUrl(file: ClusterFile, m: MasterSpec): string | undefined {
  if (m.api === undefined) return undefined;
  const host = m.api.host === '0.0.0.0' ? '127.0.0.1' : m.api.host;
  return `${file.insecureHttp ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${m.api.port}`;
}

// The campaign's books: what is in flight to which master (to name suspects when a master
// exits or stalls), the counters of the pass criteria, and findings, each printed once per
// signature as a JSON line.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Channel = 'http' | 'agent' | 'peer' | 'kv' | 'clusterfile' | 'canary' | 'harness';

export interface Flight {
  readonly id: number;
  readonly channel: Channel;
  readonly master: string;
  readonly family: string;
  /** Readable: what was sent. */
  readonly desc: string;
  /** Reproducible: the seed, the stream and the index of the generated value. */
  readonly origin: string;
  readonly started: number;
  ended?: number;
  status?: number | string;
  /** For a finding's file: the bytes sent. */
  readonly payload?: () => Buffer | undefined;
}

/** How dangerous a family is, to pick the likeliest culprit among those in flight. */
const DANGER: Record<string, number> = {
  model: 2,
  'json-patch-bomb': 10,
  'agent:big-list': 9,
  'body-bomb': 8,
  'agent:malformed': 7,
  'selector-bomb': 6,
  'agent:req': 5,
  peer: 5,
  kv: 5,
  raw: 4,
  'odd-path': 4,
  'watch-many': 3,
  'agent:watch': 3,
  crud: 2,
  'log-absolute': 2,
  log: 2,
  misc: 2,
  'agent:connect': 1,
  canary: 0,
  harness: 0,
};

export function danger(family: string): number {
  return DANGER[family] ?? 1;
}

/** For a stall: requests that carry a big repeated payload (a selector of 64 KB, say) are likelier culprits. */
export function payloadHint(f: Flight): number {
  let max = 0;
  for (const m of f.desc.matchAll(/×(\d+)|body\((\d+)/g)) max = Math.max(max, Number(m[1] ?? m[2]));
  return max < 1000 ? 0 : Math.min(10, Math.round(2 * Math.log10(max)));
}

/** What a master's dying words say about the request that killed it. */
export function exitHint(stderr: readonly string[]): ((f: Flight) => number) | undefined {
  const text = stderr.join('\n');
  if (/frame-too-large|exceeds the \d+-byte limit/.test(text)) return (f) => (f.family === 'agent:big-list' && /GET/.test(f.desc) ? 25 : f.channel === 'agent' && /GET/.test(f.desc) ? 20 : 0);
  if (/must not be greater than 123 bytes/.test(text)) return (f) => (f.family === 'agent:malformed' || f.channel === 'peer' || f.channel === 'kv' ? 20 : 0);
  if (/heap out of memory|Reached heap limit|Allocation failed|ValueDeserializer/.test(text)) {
    // structuredClone (ValueDeserializer) in the stack: a JSON patch's copies.
    const cloning = /ValueDeserializer/.test(text);
    const weight: Record<string, number> = { 'json-patch-bomb': cloning ? 40 : 30, 'body-bomb': 25, 'agent:big-list': 20, 'agent:req': 15 };
    return (f) => weight[f.family] ?? 0;
  }
  return undefined;
}

export interface Counters {
  requests: number;
  http_requests: number;
  agent_frames: number;
  peer_frames: number;
  kv_frames: number;
  clusterfile_cases: number;
  answered: number;
  master_exits: number;
  max_stall_ms: number;
  max_wall_stall_ms: number;
  stall_reports: number;
  max_livez_ms: number;
  unhandled_rejections: number;
  unanswered: number;
  server_errors: number;
  status_503: number;
  too_large_rv_504: number;
  status_429: number;
  cut_by_exit: number;
  refused_while_down: number;
  raw_closed: number;
  oversize_closed: number;
  canary_writes: number;
  canary_reads: number;
  canary_errors: number;
  ssrf_hits: number;
  store_mismatches: number;
  store_objects: number;
  store_unknown: number;
  accepted_writes: number;
  clusterfile_failures: number;
  agent_closed_by_server: number;
  agent_ignored: number;
  agent_quiet_watches: number;
  internal_errors_logged: number;
}

export class Ledger {
  readonly counters: Counters = {
    requests: 0,
    http_requests: 0,
    agent_frames: 0,
    peer_frames: 0,
    kv_frames: 0,
    clusterfile_cases: 0,
    answered: 0,
    master_exits: 0,
    max_stall_ms: 0,
    max_wall_stall_ms: 0,
    stall_reports: 0,
    max_livez_ms: 0,
    unhandled_rejections: 0,
    unanswered: 0,
    server_errors: 0,
    status_503: 0,
    too_large_rv_504: 0,
    status_429: 0,
    cut_by_exit: 0,
    refused_while_down: 0,
    raw_closed: 0,
    oversize_closed: 0,
    canary_writes: 0,
    canary_reads: 0,
    canary_errors: 0,
    ssrf_hits: 0,
    store_mismatches: 0,
    store_objects: 0,
    store_unknown: 0,
    accepted_writes: 0,
    clusterfile_failures: 0,
    agent_closed_by_server: 0,
    agent_ignored: 0,
    agent_quiet_watches: 0,
    internal_errors_logged: 0,
  };
  readonly statuses = new Map<string, number>();
  readonly inFlight = new Map<number, Flight>();
  private readonly recent: Flight[] = [];
  private nextId = 1;
  private readonly signatures = new Map<string, number>();
  /** Each finding kind/family: seconds into the campaign when first seen. */
  readonly firstFound = new Map<string, { at_s: number; seed: number }>();
  findings = 0;
  private files = 0;
  seed = 0;

  constructor(
    public startedAt: number,
    private readonly out: (line: string) => void,
    private readonly outDir: string | undefined,
    private readonly maxPerSignature = 3,
  ) {}

  begin(f: Omit<Flight, 'id' | 'started'>): Flight {
    const flight: Flight = { ...f, id: this.nextId++, started: Date.now() };
    this.inFlight.set(flight.id, flight);
    return flight;
  }

  end(f: Flight, status: number | string): void {
    f.ended = Date.now();
    f.status = status;
    this.inFlight.delete(f.id);
    this.recent.push(f);
    if (this.recent.length > 4000) this.recent.splice(0, 1000);
    const key = typeof status === 'number' ? String(status) : status;
    this.statuses.set(`${f.channel}:${key}`, (this.statuses.get(`${f.channel}:${key}`) ?? 0) + 1);
  }

  /**
   * Requests to `master` that were in flight at some point in [from, to], likeliest culprits
   * first: those the evidence points at (`hint`: what the master printed as it died), then
   * those that began just before the stall began (`began`: a synchronous stall starts when its
   * request arrives), then those still unanswered, then by how dangerous their family is.
   */
  suspects(master: string, from: number, to: number, max = 5, hint?: (f: Flight) => number, began?: number): Flight[] {
    const all = [...this.inFlight.values(), ...this.recent].filter((f) => f.master === master && f.started <= to && (f.ended === undefined || f.ended >= from) && f.channel !== 'canary' && f.channel !== 'harness');
    // A connection cut abnormally (1006) or reset as the master died was most likely the one it died on.
    const cut = (f: Flight): boolean => f.ended !== undefined && Math.abs(f.ended - to) < 1500 && /1006|cut by exit/.test(String(f.status));
    // Refused at the door (401, 403): it did no work.
    const cheap = (f: Flight): boolean => /^(401|403)$|refused 401/.test(String(f.status ?? ''));
    const score = (f: Flight): number => (cheap(f) ? -8 : 0) + (hint?.(f) ?? 0) + (began !== undefined && f.started >= began - 700 && f.started <= began + 50 ? 10 : 0) + (cut(f) ? 6 : f.ended === undefined || f.ended > to ? 4 : 0) + danger(f.family);
    all.sort((a, b) => score(b) - score(a) || b.started - a.started);
    return all.slice(0, max);
  }

  at(): number {
    return Math.round((Date.now() - this.startedAt) / 100) / 10;
  }

  /**
   * Prints a finding once per signature (and up to maxPerSignature examples); counts the rest.
   * Returns whether it was printed.
   */
  finding(kind: string, family: string, signature: string, fields: Record<string, unknown>, flight?: Flight): boolean {
    this.findings++;
    const sig = `${kind}|${family}|${signature}`;
    const n = (this.signatures.get(sig) ?? 0) + 1;
    this.signatures.set(sig, n);
    const first = `${kind}:${family}`;
    if (!this.firstFound.has(first)) this.firstFound.set(first, { at_s: this.at(), seed: this.seed });
    if (n > this.maxPerSignature) return false;
    let file: string | undefined;
    const bytes = flight?.payload?.();
    if (this.outDir !== undefined && bytes !== undefined) {
      file = join(this.outDir, `finding-${++this.files}.bin`);
      try {
        writeFileSync(file, bytes);
      } catch {
        file = undefined;
      }
    }
    this.out(JSON.stringify({ fuzz: 'finding', kind, family, seed: this.seed, at_s: this.at(), ...(flight === undefined ? {} : { master: flight.master, origin: flight.origin, request: flight.desc }), ...fields, ...(file === undefined ? {} : { sent_bytes: file }), ...(n > 1 ? { occurrence: n } : {}) }));
    return true;
  }

  describeSuspects(list: readonly Flight[]): { family: string; origin: string; request: string; status?: number | string }[] {
    return list.map((f) => ({ family: f.family, origin: f.origin, request: f.desc, ...(f.status === undefined ? {} : { status: f.status }) }));
  }
}

// Benchmarks of the Raft core alone (no disk, no sockets), printed as JSON lines.
//
//   npm run bench            # all scenarios, 5 runs each
//   npm run bench -- --runs 9
//
// commit-throughput: a 3-member cluster in one process, messages delivered synchronously;
//   the leader proposes N entries of 128 bytes in batches (as a host doing group commit would)
//   and we time until every member has applied them all. Variants run interleaved, so a noisy
//   machine affects them alike; medians and ratios are printed at the end.
// simulator: one 2000-tick faulty simulation of 5 nodes, with and without the safety checker,
//   to show what the property suite spends on checking.
import { parseArgs } from 'node:util';
import { MemoryStorage, RawNode, SeededRandom, type Message } from '@flotilla/raft';
import { randomSchedule, runSchedule } from '@flotilla/raft/testing';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`--runs must be a positive integer, got "${values.runs}"\n`);
  process.exit(2);
}

interface Member {
  raw: RawNode;
  storage: MemoryStorage;
  applied: number;
}

function commitThroughput(entries: number, batch: number, maxInflightMsgs: number): number {
  const ids = ['n1', 'n2', 'n3'];
  const members = new Map<string, Member>();
  ids.forEach((id, i) => {
    const storage = MemoryStorage.bootstrap(ids);
    const raw = new RawNode({ id, storage, random: new SeededRandom(i + 1), electionTick: 10, heartbeatTick: 1, maxInflightMsgs });
    members.set(id, { raw, storage, applied: 0 });
  });
  let queue: Message[] = [];
  const flush = (m: Member): void => {
    while (m.raw.hasReady()) {
      const rd = m.raw.ready();
      m.storage.append(rd.entries);
      if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
      for (const msg of rd.messages) queue.push(msg);
      for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.byteLength > 0) m.applied++;
      m.raw.advance();
    }
  };
  const settle = (): void => {
    for (const m of members.values()) flush(m);
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      for (const msg of batch) {
        const target = members.get(msg.to)!;
        target.raw.step(msg);
        flush(target);
      }
    }
  };
  const leader = members.get('n1')!;
  settle(); // apply the bootstrap entries: a member campaigns only with its membership applied
  leader.raw.campaign();
  settle();
  const payload = new Uint8Array(128).fill(7);
  const proposals = Array.from({ length: batch }, () => ({ type: 'normal' as const, data: payload }));
  const start = performance.now();
  for (let sent = 0; sent < entries; sent += batch) {
    leader.raw.proposeAll(proposals);
    settle();
  }
  const ms = performance.now() - start;
  for (const [id, m] of members) {
    if (m.applied !== entries) throw new Error(`${id} applied ${m.applied} of ${entries}`);
  }
  return ms;
}

function simulator(check: boolean): number {
  const schedule = randomSchedule(42, 5, 2000, true);
  const start = performance.now();
  const result = runSchedule(schedule, check ? {} : { check: false });
  if (!result.ok) throw new Error(result.violation.message);
  return performance.now() - start;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function line(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

const ENTRIES = 19_200; // a multiple of every batch size
const throughput = [
  { variant: 'batch-1', batch: 1, inflight: 256 },
  { variant: 'batch-64', batch: 64, inflight: 256 },
  { variant: 'batch-64-inflight-1', batch: 64, inflight: 1 },
];
const sims = [
  { variant: 'checked', check: true },
  { variant: 'unchecked', check: false },
];
const times = new Map<string, number[]>();
const record = (key: string, ms: number): void => {
  times.set(key, [...(times.get(key) ?? []), ms]);
};

commitThroughput(2048, 16, 256); // warm up the JIT before measuring
for (let run = 1; run <= runs; run++) {
  for (const t of throughput) {
    const ms = commitThroughput(ENTRIES, t.batch, t.inflight);
    record(`commit-throughput/${t.variant}`, ms);
    line({ bench: 'commit-throughput', variant: t.variant, run, entries: ENTRIES, ms: +ms.toFixed(1), entriesPerSec: Math.round((ENTRIES / ms) * 1000) });
  }
  for (const s of sims) {
    const ms = simulator(s.check);
    record(`simulator/${s.variant}`, ms);
    line({ bench: 'simulator', variant: s.variant, run, ticks: 2000, nodes: 5, ms: +ms.toFixed(1) });
  }
}

for (const [key, ms] of times) {
  const [bench, variant] = key.split('/');
  const m = median(ms);
  const extra = bench === 'commit-throughput' ? { entriesPerSecMedian: Math.round((ENTRIES / m) * 1000) } : {};
  line({ bench, variant, summary: 'median', runs, msMedian: +m.toFixed(1), ...extra });
}
const ratio = (a: string, b: string): number => +(median(times.get(a)!) / median(times.get(b)!)).toFixed(2);
line({ summary: 'ratio', of: 'commit-throughput batch-1 / batch-64 (time)', value: ratio('commit-throughput/batch-1', 'commit-throughput/batch-64') });
line({ summary: 'ratio', of: 'commit-throughput batch-64-inflight-1 / batch-64 (time)', value: ratio('commit-throughput/batch-64-inflight-1', 'commit-throughput/batch-64') });
line({ summary: 'ratio', of: 'simulator checked / unchecked (time)', value: ratio('simulator/checked', 'simulator/unchecked') });

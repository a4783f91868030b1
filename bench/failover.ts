// How long writes stop when the leader is SIGKILLed.
//
//   npm run bench:failover              # 20 kills (--kills N for another number)
//
// Three master processes on loopback under 16 concurrent writers (each write a new key). Each
// round kills the leader with SIGKILL and measures the unavailability: from the kill until the
// first write that *started after the kill* succeeds. The killed master is restarted before
// the next round. At the end every acknowledged write is read back. Prints JSON lines; the
// last is the summary {bench: "failover", kills, p50_unavailable_ms, max_unavailable_ms,
// lost_acked_writes}.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { KvClient, isKvError } from '@flotilla/store';
import { ProcessCluster } from '../test/support/masters.ts';

const { values } = parseArgs({ options: { kills: { type: 'string', default: '20' }, clients: { type: 'string', default: '16' } } });
const kills = Number(values.kills);
const clients = Number(values.clients);
if (!Number.isInteger(kills) || kills < 1 || !Number.isInteger(clients) || clients < 1) {
  process.stderr.write('--kills and --clients must be positive integers\n');
  process.exit(2);
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const cluster = await ProcessCluster.create({ masters: 3, proxied: false });
const acked = new Set<string>();
const completions: { start: number; end: number }[] = [];
let running = true;
const loops: Promise<void>[] = [];
const kvClients: KvClient[] = [];

try {
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();
  for (let i = 0; i < clients; i++) {
    const client = new KvClient({ endpoints: cluster.clientUrls(), secret: cluster.secret, name: `w${i}`, timeoutMs: 10_000, attemptTimeoutMs: 1000 });
    kvClients.push(client);
    loops.push(
      (async () => {
        for (let n = 0; running; n++) {
          const key = `f/${i}-${n}`;
          const start = performance.now();
          try {
            await client.put(key, enc('x'));
            acked.add(key);
            completions.push({ start, end: performance.now() });
          } catch (err) {
            if (!isKvError(err)) throw err;
          }
        }
      })(),
    );
  }
  const unavailable: number[] = [];
  for (let round = 1; round <= kills; round++) {
    await new Promise((r) => setTimeout(r, 1000));
    const leader = await cluster.leader(20_000);
    const killedAt = performance.now();
    await cluster.kill(leader);
    // The first write that began after the kill and succeeded ends the outage.
    let recovered: number | undefined;
    while (recovered === undefined) {
      await new Promise((r) => setTimeout(r, 5));
      const first = completions.filter((c) => c.start >= killedAt).sort((a, b) => a.end - b.end)[0];
      if (first !== undefined) recovered = first.end;
      if (performance.now() - killedAt > 30_000) throw new Error('writes did not resume within 30 s');
    }
    const ms = recovered - killedAt;
    unavailable.push(ms);
    process.stdout.write(`${JSON.stringify({ bench: 'failover', round, killed: leader, unavailable_ms: Math.round(ms) })}\n`);
    await cluster.start(leader);
  }
  running = false;
  await Promise.all(loops);
  await cluster.converged(60_000);
  const reader = new KvClient({ endpoints: cluster.clientUrls(), secret: cluster.secret, timeoutMs: 10_000 });
  // Read the keys back in pages: all of them would not fit in one response frame.
  const stored = new Set<string>();
  for (let from = 'f/'; ; ) {
    const page = await reader.range({ key: from, end: 'f0', keysOnly: true, limit: 5000 });
    for (const kv of page.kvs) stored.add(kv.key);
    if (!page.more) break;
    from = `${page.kvs[page.kvs.length - 1]!.key}\0`;
  }
  reader.close();
  const lost = [...acked].filter((k) => !stored.has(k)).length;
  const sorted = [...unavailable].sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'failover',
      kills,
      clients,
      p50_unavailable_ms: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!),
      max_unavailable_ms: Math.round(sorted[sorted.length - 1]!),
      lost_acked_writes: lost,
      acked_writes: acked.size,
    })}\n`,
  );
} finally {
  running = false;
  for (const c of kvClients) c.close();
  await cluster.stop();
}

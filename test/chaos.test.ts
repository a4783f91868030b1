// Chaos: real master processes under concurrent client load while a nemesis SIGKILLs leaders
// (and sometimes a follower, or two masters at once) and isolates a minority leader behind
// the fault proxies. Then the cluster heals and every claim is checked:
//   - the recorded history is linearizable (per key, WGL search);
//   - no acknowledged write is missing;
//   - at most one leader was ever announced per term;
//   - every master applied the same entries in the same order (same index, same digest).
// `npm test` runs a short version; `npm run test:soak` runs 100 kills on five masters.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { KvClient } from '@flotilla/store';
import { checkHistory } from './support/linearizability.ts';
import { ProcessCluster } from './support/masters.ts';
import { Workload } from './support/workload.ts';

const KILLS = Number(process.env['CHAOS_KILLS'] ?? 5);
const MASTERS = Number(process.env['CHAOS_MASTERS'] ?? 3);

type Fault = 'kill-leader' | 'kill-follower' | 'kill-two' | 'isolate-leader';

/** Leader kills, with a follower kill, a double kill and a minority-leader isolation mixed in. */
function plan(kills: number): Fault[] {
  const faults: Fault[] = [];
  const extras: Fault[] = ['isolate-leader', 'kill-follower', 'kill-two'];
  for (let i = 0; i < kills; i++) {
    faults.push('kill-leader');
    if (i % 2 === 1 || kills <= 5) {
      const extra = extras[Math.floor(i / (kills <= 5 ? 1 : 2)) % extras.length];
      if (extra !== undefined && (kills > 5 || i < extras.length)) faults.push(extra);
    }
  }
  return faults;
}

const pause = (min: number, max: number): Promise<void> => new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));

test(`chaos: ${MASTERS} masters under load survive ${KILLS} leader kills, follower kills and a partitioned leader`, { timeout: 60 * 60_000 }, async (t) => {
  const cluster = await ProcessCluster.create({ masters: MASTERS });
  t.after(() => cluster.stop());
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();

  const load = new Workload({ endpoints: cluster.clientUrls(), secret: cluster.secret, clients: 8, registers: 5 });
  const started = performance.now();
  load.start();
  const faults = plan(KILLS);
  const restart = async (names: string[]): Promise<void> => {
    await pause(200, 800);
    await Promise.all(names.map((n) => cluster.start(n)));
  };
  for (const fault of faults) {
    await pause(600, 1200);
    const leader = await cluster.leader(15_000);
    const follower = cluster.names.find((n) => n !== leader && cluster.running(n))!;
    switch (fault) {
      case 'kill-leader':
        await cluster.kill(leader);
        await restart([leader]);
        break;
      case 'kill-follower':
        await cluster.kill(follower);
        await restart([follower]);
        break;
      case 'kill-two':
        await Promise.all([cluster.kill(leader), cluster.kill(follower)]);
        await restart([leader, follower]);
        break;
      case 'isolate-leader':
        cluster.isolate(leader);
        await pause(1500, 2500);
        cluster.heal();
        break;
    }
  }
  await pause(500, 1000);
  await load.stop();
  const elapsed = (performance.now() - started) / 1000;

  // Heal everything and let every master catch up.
  cluster.heal();
  for (const n of cluster.names) if (!cluster.running(n)) await cluster.start(n);
  await cluster.leader(15_000);
  const statuses = await cluster.converged(60_000);
  await load.finalReads(cluster.clientUrls());

  // 1. Linearizable.
  const result = checkHistory(load.history);
  assert.ok(result.ok, result.ok ? '' : `key ${result.key}: ${result.reason}`);
  // 2. No acknowledged write missing.
  const client = new KvClient({ endpoints: cluster.clientUrls(), secret: cluster.secret, timeoutMs: 10_000 });
  const stored = await client.range({ key: 'u/', prefix: true });
  client.close();
  const present = new Map(stored.kvs.map((kv) => [kv.key, new TextDecoder().decode(kv.value)]));
  const missing = [...load.acked].filter(([k, v]) => present.get(k) !== v);
  assert.deepEqual(missing, [], 'acknowledged once-only writes are all present');
  // 3. Election Safety, from every leadership the masters announced.
  const doubled = [...cluster.leaderTerms].filter(([, names]) => names.size > 1);
  assert.deepEqual(doubled, [], 'at most one leader per term');
  // 4. Same entries, same order, everywhere.
  assert.equal(new Set(statuses.map((s) => `${s.appliedIndex}:${s.appliedHash}`)).size, 1);
  assert.deepEqual(cluster.complaints, [], 'no master complained on stderr');

  const writeTimes = load.stats.writeTimes;
  let maxGap = 0;
  for (let i = 1; i < writeTimes.length; i++) maxGap = Math.max(maxGap, writeTimes[i]! - writeTimes[i - 1]!);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'chaos',
      masters: MASTERS,
      faults: faults.length,
      leaderKills: faults.filter((f) => f === 'kill-leader').length,
      seconds: +elapsed.toFixed(1),
      operations: result.operations,
      okPerSecond: Math.round(load.stats.ok / elapsed),
      unknownWrites: load.stats.unknown,
      failedReads: load.stats.failedReads,
      ackedOnceOnly: load.acked.size,
      terms: cluster.leaderTerms.size,
      longestGapBetweenWritesMs: Math.round(maxGap),
      appliedIndex: statuses[0]!.appliedIndex,
    })}\n`,
  );
});

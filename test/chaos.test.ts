// Chaos: real master processes under concurrent client load while a nemesis SIGKILLs leaders
// (and sometimes a follower, or two masters at once), isolates a minority leader behind the
// fault proxies, and hurts members' data: wipes a data directory, damages a byte of one, fills
// a member's disk (each master's data on its own small tmpfs; needs root), and sends every
// master the frame with a huge term that once stopped a cluster for good. A master whose data
// was wiped or damaged must refuse to start (or catch up, if what LevelDB dropped only shortened
// its log) and is re-added as an operator would (member remove, start --join, member add).
// Then the cluster heals and every claim is checked:
//   - the recorded history is linearizable (per key, WGL search);
//   - no acknowledged write is missing;
//   - at most one leader was ever announced per term;
//   - every master applied the same entries in the same order (same index, same digest).
// `npm test` runs a short version; `npm run test:soak` runs 100 kills on five masters.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { closeSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_TERM } from '@flotilla/raft';
import { KvClient } from '@flotilla/store';
import { Dialer, makeCredential, silentLogger } from '@flotilla/wire';
import { checkHistory } from './support/linearizability.ts';
import { ProcessCluster } from './support/masters.ts';
import { Workload } from './support/workload.ts';

const KILLS = Number(process.env['CHAOS_KILLS'] ?? 5);
const MASTERS = Number(process.env['CHAOS_MASTERS'] ?? 3);

type Fault = 'kill-leader' | 'kill-follower' | 'kill-two' | 'isolate-leader' | 'wipe' | 'damage' | 'fill-disk' | 'huge-term';

/** Filling a disk needs a tmpfs per master, so root. */
const ROOT = process.getuid?.() === 0;

/**
 * Leader kills, with a follower kill, a double kill, a minority-leader isolation and the data
 * faults (wipe, damage, full disk, huge term) mixed in.
 */
function plan(kills: number): Fault[] {
  const faults: Fault[] = [];
  const extras: Fault[] = ['isolate-leader', 'wipe', 'kill-follower', 'damage', 'kill-two', 'huge-term', ...(ROOT ? (['fill-disk'] as const) : [])];
  if (kills <= 5) {
    // The short form: every kind of fault once, between the leader kills.
    for (let i = 0; i < Math.max(kills, extras.length); i++) {
      if (i < kills) faults.push('kill-leader');
      if (i < extras.length) faults.push(extras[i]!);
    }
    return faults;
  }
  for (let i = 0; i < kills; i++) {
    faults.push('kill-leader');
    if (i % 2 === 1) faults.push(extras[Math.floor(i / 2) % extras.length]!);
  }
  return faults;
}

/** Changes one byte of a master's table or write-ahead log files, somewhere past their headers. */
function damageByte(dataDir: string): string {
  const dir = join(dataDir, 'raft');
  const files = readdirSync(dir).filter((f) => /\.(ldb|log)$/.test(f) && statSync(join(dir, f)).size > 64);
  const file = join(dir, files[Math.floor(Math.random() * files.length)]!);
  const bytes = readFileSync(file);
  const at = 32 + Math.floor(Math.random() * (bytes.length - 32));
  bytes[at] = bytes[at]! ^ (1 + Math.floor(Math.random() * 255));
  writeFileSync(file, bytes);
  return `${file.slice(dataDir.length + 1)} at ${at}`;
}

/** Fills a master's tmpfs to the last byte; returns how to free it again. */
function fillDisk(dataDir: string): () => void {
  const fd = openSync(join(dataDir, 'filler'), 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // as much as fitted was written: the disk is full
  } finally {
    closeSync(fd);
  }
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dataDir, `crumb${i}`), Buffer.alloc(512));
    } catch {
      break;
    }
  }
  return () => {
    for (const f of readdirSync(dataDir)) if (f === 'filler' || f.startsWith('crumb')) rmSync(join(dataDir, f), { force: true });
  };
}

/**
 * Sends every master, on its own peer port, the heartbeat at term 2^53 − 1 that once stopped a
 * cluster for good: as a name that is no member (refused at the transport), and under a
 * member's name and member id (refused by Raft as beyond the largest term); then one at the
 * largest valid term to one master, which may move it one bounded step and no further.
 */
async function hugeTerms(cluster: ProcessCluster): Promise<void> {
  const statuses = await cluster.statuses();
  const send = (target: string, as: string, memberId: string, clusterId: string | null, term: number): Promise<void> =>
    new Promise((resolve) => {
      let sent = false;
      const { ip, peerPort } = cluster.peerListen(target);
      const d = new Dialer({
        url: `ws://${ip}:${peerPort}/raft`,
        remote: target,
        credential: () => makeCredential(cluster.secret, as),
        maxFrameBytes: 1 << 20,
        maxBufferedBytes: 1 << 20,
        heartbeatMs: 1000,
        logger: silentLogger,
        onConnect: (conn) => {
          if (sent) return;
          sent = true;
          conn.on('frame', (f) => {
            if (f['t'] === 'welcome') conn.send({ t: 'raft', m: { type: 'heartbeat', from: as, to: target, term, commit: 0, readSeq: 0 } });
          });
          conn.send({ t: 'hello', member: as, memberId, cluster: 'chaos', clusterId });
        },
      });
      d.start();
      setTimeout(() => {
        d.stop();
        resolve();
      }, 400);
    });
  for (const target of statuses) {
    if (!target.reachable) continue;
    const member = statuses.find((s) => s.name !== target.name && s.memberId !== null);
    await send(target.name, 'intruder', '0123456789abcdef', null, Number.MAX_SAFE_INTEGER);
    if (member !== undefined) await send(target.name, member.name, member.memberId!, null, Number.MAX_SAFE_INTEGER);
  }
  const [target, member] = statuses.filter((s) => s.reachable && s.memberId !== null);
  if (target !== undefined && member !== undefined) await send(target.name, member.name, member.memberId!, null, MAX_TERM);
}

const pause = (min: number, max: number): Promise<void> => new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));

test(`chaos: ${MASTERS} masters under load survive ${KILLS} leader kills, follower kills, a partitioned leader, wiped and damaged data, ${ROOT ? 'a full disk, ' : ''}and huge terms`, { timeout: (KILLS <= 5 ? 10 : 60) * 60_000 }, async (t) => {
  if (!ROOT) t.diagnostic('not root: the fill-disk fault is left out (it needs a tmpfs per master)');
  const cluster = await ProcessCluster.create({ masters: MASTERS, ...(ROOT ? { tmpfsMb: 64 } : {}) });
  const load = new Workload({ endpoints: cluster.clientUrls(), secret: cluster.secret, clients: 8, registers: 5 });
  // The load is stopped first even when a step fails: its clients retry for ever, and would
  // keep this process alive after the test has ended.
  t.after(async () => {
    await load.stop();
    await cluster.stop();
  });
  await Promise.all(cluster.names.map((n) => cluster.start(n)));
  await cluster.leader();

  const started = performance.now();
  load.start();
  const faults = plan(KILLS);
  const restart = async (names: string[]): Promise<void> => {
    await pause(200, 800);
    await Promise.all(names.map((n) => cluster.start(n)));
  };
  /** What each data fault led to, for the summary line. */
  const outcomes: string[] = [];
  let stepFrames = 0;
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
      case 'wipe': {
        await cluster.kill(follower);
        const dir = cluster.dataDir(follower);
        for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
        const said = await cluster.startRefused(follower);
        assert.match(said, /is new \(empty or missing\), but m\d knows m\d as member [0-9a-f]+ .*lost the data it had/);
        await cluster.reAdd(follower);
        outcomes.push('wipe: refused, re-added');
        break;
      }
      case 'damage': {
        await cluster.kill(follower);
        const where = damageByte(cluster.dataDir(follower));
        let outcome: string;
        try {
          await cluster.start(follower);
          // It started: what LevelDB could not read was dropped, or the byte was one nothing
          // reads. It must catch up and agree with the others (checked below and at the end),
          // or find out and stop.
          const deadline = Date.now() + 20_000;
          for (;;) {
            const s = (await cluster.statuses()).find((x) => x.name === follower)!;
            if (!cluster.running(follower) || s.alarms.some((a) => a.type === 'CORRUPT')) {
              outcome = 'started, then stopped itself as damaged';
              break;
            }
            if (s.serving) {
              outcome = 'started and caught up';
              break;
            }
            if (Date.now() > deadline) throw new Error(`${follower} neither served nor stopped after damage at ${where}: ${JSON.stringify(s)}`);
            await pause(100, 100);
          }
        } catch (err) {
          if (!/is damaged/.test((err as Error).message)) throw err;
          outcome = 'refused as damaged';
        }
        if (outcome !== 'started and caught up') {
          cluster.complaints.splice(0, cluster.complaints.length, ...cluster.complaints.filter((c) => !c.startsWith(`${follower}:`) || !/damaged|to bring it back/.test(c)));
          await cluster.reAdd(follower);
        }
        outcomes.push(`damage ${where}: ${outcome}`);
        break;
      }
      case 'fill-disk': {
        const victim = Math.random() < 0.5 ? leader : follower;
        const free = fillDisk(cluster.dataDir(victim));
        await pause(1500, 3000);
        const s = (await cluster.statuses()).find((x) => x.name === victim)!;
        free();
        assert.ok(cluster.running(victim), `${victim} is still running with its disk full`);
        outcomes.push(`fill-disk ${victim === leader ? 'leader' : 'follower'}: ${s.alarms.map((a) => a.type).join(',') || 'no alarm yet'}`);
        break;
      }
      case 'huge-term':
        await hugeTerms(cluster);
        stepFrames++;
        outcomes.push('huge-term: sent');
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
  // 5. The frames with huge terms moved no one further than one bounded step each.
  const top = Math.max(...statuses.map((s) => s.term ?? 0));
  assert.ok(top < (stepFrames + 1) * (2 ** 20 + 1000), `terms stayed bounded (top ${top})`);

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
      dataFaults: outcomes,
    })}\n`,
  );
});

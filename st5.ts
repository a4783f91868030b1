import fc from 'fast-check';
import { runSchedule } from '@flotilla/raft/testing';
import { scheduleArbitrary } from './packages/raft/test/schedules.ts';
for (const nodes of [3, 5]) {
  const samples = fc.sample(scheduleArbitrary(nodes), { numRuns: 15000, seed: 99 + nodes });
  const rec: number[] = []; let fails = 0;
  for (const s of samples) { const r = runSchedule(s); if (!r.ok) { fails++; console.log(r.violation.message.slice(0, 200)); } rec.push(r.stats.recoveryTicks); }
  rec.sort((a, b) => a - b);
  console.log(JSON.stringify({ nodes, runs: samples.length, fails, p50: rec[rec.length >> 1], p99: rec[Math.floor(rec.length * 0.99)], p999: rec[Math.floor(rec.length * 0.999)], max: rec[rec.length - 1] }));
}

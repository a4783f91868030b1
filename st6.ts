import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { runSchedule } from '@flotilla/raft/testing';
import { scheduleArbitrary } from './packages/raft/test/schedules.ts';
const samples = fc.sample(scheduleArbitrary(3), { numRuns: 15000, seed: 102 });
samples.forEach((s, i) => { const r = runSchedule(s); if (!r.ok) { console.log(i, r.violation.message.slice(0, 300)); writeFileSync(`/tmp/fail-${i}.json`, JSON.stringify(s, null, 1)); } });

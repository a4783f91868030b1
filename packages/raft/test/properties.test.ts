// Layer 2 of the test plan: the real Raft core on a simulated network, driven by fast-check
// through random schedules of faults, proposals, reads, membership changes, transfers and
// compactions. Every step is checked for Raft's safety properties; every run ends with the
// liveness check. `npm run test:soak` runs the same properties 100,000 times.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkSchedules } from './schedules.ts';

const runs = Number(process.env['RAFT_PROPERTY_RUNS'] ?? 1000);

for (const nodes of [3, 5]) {
  test(`safety and liveness hold on ${runs} random schedules of ${nodes} nodes`, { timeout: 30 * 60_000 }, () => {
    const outcome = checkSchedules({ name: `raft-${nodes}-nodes`, nodes, runs });
    if (outcome.failed) assert.fail(outcome.report);
    assert.equal(outcome.runs, runs);
  });
}

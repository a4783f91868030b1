// fast-check generators for simulator schedules, and the runner the property tests share.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { RaftConfig } from '@flotilla/raft';
import { runSchedule, type Action, type Raft, type RunResult, type Schedule } from '@flotilla/raft/testing';

const node = fc.nat({ max: 7 });

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('tick' as const), ticks: fc.integer({ min: 1, max: 40 }) }) },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('propose' as const), node: fc.constant('leader' as const), count: fc.integer({ min: 1, max: 10 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('propose' as const), node, count: fc.constant(1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('read' as const), node }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('crash' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('suspect' as const), node }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('restart' as const), node }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('partition' as const), groups: fc.array(fc.nat({ max: 2 }), { minLength: 2, maxLength: 8 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('isolate' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('faults' as const),
      drop: fc.constantFrom(0, 0.05, 0.2, 0.4),
      duplicate: fc.constantFrom(0, 0.05, 0.2),
      maxDelay: fc.constantFrom(0, 10, 40),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('addLearner' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('addVoter' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('promote' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('transfer' as const), node }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('compact' as const), node, keep: fc.nat({ max: 3 }) }) },
);

/** Random schedules for clusters of `nodes` founding voters. */
export function scheduleArbitrary(nodes: number, maxActions = 150): fc.Arbitrary<Schedule> {
  return fc.record({
    nodes: fc.constant(nodes),
    seed: fc.nat(),
    options: fc.record({
      preVote: fc.boolean(),
      checkQuorum: fc.boolean(),
      // Tiny messages and windows force the corner cases: one entry per append, stop-and-wait.
      maxSizePerMsg: fc.constantFrom(1, 64, 4096),
      maxInflightMsgs: fc.constantFrom(1, 4, 256),
      snapshotChunkSize: fc.constantFrom(16, 256, 1 << 20),
    }),
    actions: fc.array(action, { minLength: 1, maxLength: maxActions, size: 'max' }),
  });
}

export interface PropertyRun {
  readonly name: string;
  readonly nodes: number;
  readonly runs: number;
  readonly createRaft?: (config: RaftConfig) => Raft;
  readonly maxActions?: number;
  /** A fixed fast-check seed (tests that must find a failure deterministically). */
  readonly seed?: number;
  /** Write the shrunk counterexample to test-results/ (default true). */
  readonly save?: boolean;
}

export type PropertyOutcome =
  | { readonly failed: false; readonly runs: number }
  | {
      readonly failed: true;
      readonly seed: number;
      readonly path: string | undefined;
      readonly schedule: Schedule;
      readonly result: RunResult & { ok: false };
      readonly file: string;
      readonly report: string;
    };

/**
 * Runs `runs` random schedules and returns the first failure, shrunk by fast-check, with the
 * schedule saved to test-results/ and the commands that replay it. RAFT_PROPERTY_SEED and
 * RAFT_PROPERTY_PATH replay a reported fast-check run exactly.
 */
export function checkSchedules(run: PropertyRun): PropertyOutcome {
  const seedEnv = run.seed === undefined ? process.env['RAFT_PROPERTY_SEED'] : String(run.seed);
  const pathEnv = process.env['RAFT_PROPERTY_PATH'];
  const params: fc.Parameters<[Schedule]> = {
    numRuns: run.runs,
    ...(seedEnv === undefined ? {} : { seed: Number(seedEnv) }),
    ...(pathEnv === undefined ? {} : { path: pathEnv }),
  };
  const options = run.createRaft === undefined ? {} : { createRaft: run.createRaft };
  const property = fc.property(scheduleArbitrary(run.nodes, run.maxActions), (schedule) => {
    const result = runSchedule(schedule, options);
    if (!result.ok) throw result.violation;
  });
  const details = fc.check(property, params);
  if (!details.failed || details.counterexample === null) return { failed: false, runs: details.numRuns };
  const schedule = details.counterexample[0];
  const result = runSchedule(schedule, options);
  if (result.ok) throw new Error(`${run.name}: the counterexample did not fail again on replay`);
  const dir = join(process.cwd(), 'test-results');
  const file = join(dir, `raft-counterexample-${run.name.replace(/\W+/g, '-')}-${details.seed}.json`);
  if (run.save !== false) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(schedule, null, 2)}\n`);
  }
  const report = [
    `${run.name}: ${result.violation.message}`,
    `  during action ${result.actionIndex} of ${schedule.actions.length} (${schedule.actions.length} = liveness phase)`,
    `  fast-check seed ${details.seed}, path ${details.counterexamplePath ?? '-'}, shrunk ${details.numShrinks} times`,
    `  shrunk schedule: ${JSON.stringify(schedule)}`,
    run.save === false ? '' : `  saved to: ${file}`,
    `  replay with a timeline:  npm run sim -- --replay ${file}`,
    `  replay this property:    RAFT_PROPERTY_SEED=${details.seed} RAFT_PROPERTY_PATH=${details.counterexamplePath ?? ''} node --import tsx --test packages/raft/test/properties.test.ts`,
  ]
    .filter((l) => l !== '')
    .join('\n');
  return {
    failed: true,
    seed: details.seed,
    path: details.counterexamplePath ?? undefined,
    schedule,
    result,
    file,
    report,
  };
}

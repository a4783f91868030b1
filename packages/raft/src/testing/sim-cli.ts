// `npm run sim`: a readable timeline of a simulated Raft cluster, and the replayer for
// counterexamples the property tests save. Examples:
//   npm run sim -- --nodes 5 --seed 42 --ticks 2000 --faults
//   npm run sim -- --replay test-results/raft-counterexample-….json
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isRaftError } from '../errors.ts';
import { randomSchedule, runSchedule, type Schedule } from './schedule.ts';
import type { SimEvent } from './simulator.ts';

const USAGE = `usage: npm run sim -- [--nodes N] [--seed S] [--ticks T] [--faults] [--verbose]
       npm run sim -- --replay FILE [--verbose]

  --nodes N    founding voters (1-9, default 5)
  --seed S     seed for the schedule, the network and the election timers (default 42)
  --ticks T    simulated ticks to run, 10 ms each (default 2000)
  --faults     inject crashes, restarts, partitions, lossy links, compaction, transfers
  --replay F   run a schedule saved by the property tests (test-results/*.json)
  --verbose    print every commit and client request too`;

function fail(message: string): never {
  process.stderr.write(`sim: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function integer(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function loadSchedule(file: string): Schedule {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail(`${file} is not JSON; pass a schedule file written by the property tests`);
  }
  const s = parsed as Partial<Schedule>;
  if (typeof s !== 'object' || s === null || !Array.isArray(s.actions) || typeof s.options !== 'object' || s.options === null) {
    fail(`${file} is not a schedule: it needs "nodes", "seed", "options" and "actions"`);
  }
  if (!Number.isInteger(s.nodes) || s.nodes! < 1 || s.nodes! > 9) fail(`${file}: "nodes" must be an integer from 1 to 9`);
  if (!Number.isInteger(s.seed)) fail(`${file}: "seed" must be an integer`);
  const kinds = new Set(['tick', 'propose', 'read', 'crash', 'suspect', 'restart', 'partition', 'isolate', 'heal', 'faults', 'addLearner', 'addVoter', 'promote', 'remove', 'transfer', 'compact']);
  s.actions.forEach((a: unknown, i) => {
    const kind = typeof a === 'object' && a !== null ? (a as { kind?: unknown }).kind : undefined;
    if (typeof kind !== 'string' || !kinds.has(kind)) fail(`${file}: action ${i} has no known "kind" (one of ${[...kinds].join(', ')})`);
    for (const [field, v] of Object.entries(a as object)) {
      const ok = field === 'kind' || v === 'leader' || isCount(v) || (Array.isArray(v) && v.every(isCount));
      if (!ok) fail(`${file}: action ${i} (${kind}) has a bad "${field}": ${JSON.stringify(v)}`);
    }
  });
  for (const [field, v] of Object.entries(s.options)) {
    if (typeof v !== 'boolean' && !isCount(v)) fail(`${file}: option "${field}" must be true, false or a number`);
  }
  return s as Schedule;
}

function main(): void {
  // `npm run sim | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  let args;
  try {
    args = parseArgs({
      options: {
        nodes: { type: 'string' },
        seed: { type: 'string' },
        ticks: { type: 'string' },
        faults: { type: 'boolean', default: false },
        replay: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const schedule =
    args.replay !== undefined
      ? loadSchedule(args.replay)
      : randomSchedule(
          integer(args.seed, 'seed', 0, 2 ** 32 - 1, 42),
          integer(args.nodes, 'nodes', 1, 9, 5),
          integer(args.ticks, 'ticks', 1, 10_000_000, 2000),
          args.faults,
        );
  const verbose = args.verbose;
  const title =
    args.replay !== undefined
      ? `replaying ${args.replay}: ${schedule.nodes} nodes, ${schedule.actions.length} actions`
      : `simulating ${schedule.nodes} nodes, seed ${schedule.seed}, ${args.ticks ?? 2000} ticks${args.faults ? ', with faults' : ''}`;
  process.stdout.write(`${title}\n`);
  let lastCommitTick = -Infinity;
  const onEvent = (e: SimEvent): void => {
    if (!verbose && e.kind === 'client') return;
    if (!verbose && e.kind === 'commit') {
      // Without --verbose, one commit line per 100 ticks keeps the timeline readable.
      if (e.tick - lastCommitTick < 100) return;
      lastCommitTick = e.tick;
    }
    const who = e.node === undefined ? '--' : e.node;
    process.stdout.write(`t=${String(e.at).padStart(7)}ms  ${who.padEnd(4)} ${e.kind.padEnd(10)} ${e.text}\n`);
  };
  let result;
  try {
    result = runSchedule(schedule, { onEvent });
  } catch (err) {
    // A schedule whose options the core refuses (say, maxSizePerMsg 0) says so in one line.
    if (isRaftError(err)) fail(`the schedule's options are not usable: ${err.message}`);
    throw err;
  }
  const s = result.stats;
  const summary =
    `${schedule.nodes} nodes, ${s.ticks} ticks, ${s.elections} leader elections, ${s.committed} values committed, ` +
    `${s.readsServed} linearizable reads, ${s.crashes} crashes, ${s.snapshotsInstalled} snapshots installed, ` +
    `${s.checks} safety checks`;
  if (result.ok) {
    process.stdout.write(`summary: ${summary}, recovered and committed within ${s.recoveryTicks} ticks after healing, 0 violations\n`);
    return;
  }
  process.stdout.write(`summary: ${summary}, VIOLATION during action ${result.actionIndex}\n`);
  process.stderr.write(`${result.violation.message}\n`);
  process.exitCode = 1;
}

main();

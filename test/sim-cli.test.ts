// The `npm run sim` demonstration as a user runs it: a real process, its output and exit code.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const root = join(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'flotilla-sim-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function sim(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // execFile kills the child (by its pid) if it outlives the timeout.
    execFile(process.execPath, ['--import', 'tsx', 'packages/raft/src/testing/sim-cli.ts', ...args], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

test('the simulator demo prints a timeline of elections, faults and commits, and a one-line summary', async () => {
  const run = await sim('--nodes', '5', '--seed', '42', '--ticks', '2000', '--faults');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^simulating 5 nodes, seed 42, 2000 ticks, with faults$/m);
  assert.match(run.stdout, /role\s+leader in term \d+/);
  assert.match(run.stdout, /fault\s+crash/);
  assert.match(run.stdout, /fault\s+partition \{/);
  assert.match(run.stdout, /commit\s+committed v\d+ at \d+/);
  const summary = run.stdout.trim().split('\n').at(-1)!;
  assert.match(summary, /^summary: 5 nodes, \d+ ticks, \d+ leader elections, \d+ values committed, .* 0 violations$/);
  const again = await sim('--nodes', '5', '--seed', '42', '--ticks', '2000', '--faults');
  assert.equal(again.stdout, run.stdout, 'the same seed gives the same run');
});

test('a saved schedule replays', async () => {
  const file = join(scratch, 'schedule.json');
  const schedule = {
    nodes: 3,
    seed: 7,
    options: { preVote: true, checkQuorum: true, maxSizePerMsg: 64, maxInflightMsgs: 4, snapshotChunkSize: 16 },
    actions: [{ kind: 'tick', ticks: 25 }, { kind: 'propose', node: 'leader', count: 3 }, { kind: 'crash', node: 0 }, { kind: 'tick', ticks: 30 }],
  };
  writeFileSync(file, JSON.stringify(schedule));
  const run = await sim('--replay', file);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^replaying .*schedule\.json: 3 nodes, 4 actions$/m);
  assert.match(run.stdout, /0 violations$/m);
});

test('bad arguments and bad files get one clear sentence and no stack trace', async () => {
  const notJson = join(scratch, 'not.json');
  writeFileSync(notJson, 'nodes: 3');
  const badAction = join(scratch, 'bad-action.json');
  writeFileSync(badAction, JSON.stringify({ nodes: 3, seed: 1, options: {}, actions: [{ kind: 'tick', ticks: 'many' }] }));
  const badOption = join(scratch, 'bad-option.json');
  writeFileSync(badOption, JSON.stringify({ nodes: 3, seed: 1, options: { maxSizePerMsg: 0 }, actions: [] }));
  const cases: [string[], RegExp][] = [
    [['--nodes', 'lots'], /--nodes must be an integer from 1 to 9, got "lots"/],
    [['--nodes', '0'], /--nodes must be an integer from 1 to 9/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--replay', join(scratch, 'missing.json')], /cannot read .*missing\.json: ENOENT/],
    [['--replay', notJson], /is not JSON/],
    [['--replay', badAction], /action 0 \(tick\) has a bad "ticks"/],
    [['--replay', badOption], /options are not usable: maxSizePerMsg must be a positive integer/],
  ];
  for (const [args, message] of cases) {
    const run = await sim(...args);
    assert.equal(run.code, 2, `${args.join(' ')}: exit code`);
    assert.match(run.stderr, message, args.join(' '));
    assert.doesNotMatch(run.stderr, /^\s+at /m, `${args.join(' ')}: no stack trace`);
  }
});

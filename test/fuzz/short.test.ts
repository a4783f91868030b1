// The fuzz campaign of issue 12 ("No request, frame or file can take a master down"), short:
// about 60 s of fuzzing against three real masters with two fixed seeds (1212, and
// 436755281, the pair that found the last stalls); FUZZ_SEED=random (as npm run test:soak
// does) or FUZZ_SEED=N changes the second one, printed with the command that repeats it.
// Not in npm test yet: inside it, one run in four still found a stall of 120 ms (68 ms of it
// the garbage collector's) while an agent wrote Events of 1.4 MB. Run it with
// node --import tsx --test test/fuzz/short.test.ts. The long version: npm run fuzz --
// --seconds N --seed S. See test/fuzz/campaign.ts for what is generated and checked;
// FUZZ_PROFILE_DIR=DIR and test/fuzz/profile-window.mjs show what a master ran during a stall.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { runCampaign } from './campaign.ts';

const FIXED_SEED = 1212;
const SECOND_SEED = 436755281;
const SECONDS = Number(process.env['FUZZ_SECONDS'] ?? 60);

test('fuzz: no request, frame or file takes a master down (issue 12)', { timeout: 300_000 }, async () => {
  const asked = process.env['FUZZ_SEED'];
  const random = asked === 'random' ? randomInt(1, 2 ** 31 - 1) : Number(asked ?? SECOND_SEED);
  console.log(`fuzz seeds: ${FIXED_SEED} and ${random}${asked === 'random' ? ' (random)' : ''}; repeat with: npm run fuzz -- --seed ${FIXED_SEED} --seed ${random} --seconds ${SECONDS}`);
  const s = await runCampaign({ seconds: SECONDS, seeds: [FIXED_SEED, random], out: (line) => console.log(line) });
  console.log(JSON.stringify(s));
  const seeds = `seeds ${FIXED_SEED}, ${random}`;
  assert.ok(s.requests > 200, `the campaign sent only ${s.requests} requests`);
  assert.equal(s.master_exits, 0, `a master exited (${seeds}; see the master-exit findings above)`);
  assert.ok(s.max_stall_ms <= 100, `a master's event loop stalled for ${s.max_stall_ms} ms of its own work (${seeds}; see the stall findings)`);
  assert.equal(s.unhandled_rejections, 0, `a master logged an unhandled rejection (${seeds})`);
  assert.equal(s.unanswered, 0, `${s.unanswered} requests got no answer (${seeds}; see the unanswered findings)`);
  assert.equal(s['internal_errors_logged'], 0, `a master logged ${s['internal_errors_logged']} unexpected errors (${seeds}; see the internal-error findings)`);
  assert.equal(s.server_errors, 0, `${s.server_errors} answers were 5xx other than 503 (${seeds}; see the server-error findings)`);
  assert.equal(s.canary_errors, 0, `the canary saw ${s.canary_errors} errors (${seeds})`);
  assert.ok((s['canary_writes'] as number) > 0, 'the canary wrote nothing');
  assert.equal(s.ssrf_hits, 0, `a master dialed the loopback listener ${s.ssrf_hits} times (SSRF; ${seeds})`);
  assert.equal(s.store_mismatches, 0, `the store does not hold what the accepted requests made (${s.store_mismatches} mismatches; ${seeds})`);
  assert.equal(s.clusterfile_failures, 0, `${s.clusterfile_failures} cluster files were not refused with one sentence (${seeds})`);
  assert.ok(s.pass);
});

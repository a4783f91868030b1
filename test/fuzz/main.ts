// npm run fuzz -- --seconds N --seed S   (the fuzz campaign of issue 12; see campaign.ts)
//
//   --seconds N        seconds of fuzzing (default 60), split over the seeds
//   --seed S           a seed; repeat it (or give S1,S2) for phases on the same cluster (default: one random seed)
//   --old-space MB     the masters' --max-old-space-size (default 512; 0: Node's default)
//   --concurrency N    HTTP requests in flight (default 6)
//   --only F1,F2       only these families (crud, selector-bomb, odd-path, raw, log-absolute, log,
//                      json-patch-bomb, body-bomb, watch-many, misc, agent, agent:req, agent:watch,
//                      agent:malformed, agent:big-list, agent:connect, peer, clusterfile)
//   --no-mute          keep generating a family after it crashed a master
//   --no-restart       leave a master down after it exited
//   --livez-fail-ms N  also fail when /livez takes longer than N ms (for code without the stall log)
//   --timeout-ms N     per-request timeout (default 15000)
//   --out DIR          where the bytes of findings' requests go (default: a new temporary directory)
//
// Prints finding lines as it goes and, last, one JSON line {"fuzz":"done",…}; exits 1 if any
// criterion failed.
//
// Against another commit (e.g. the code before issue 12's fixes): make a worktree, give it a
// node_modules of its own whose entries link to this one's except @flotilla/* (those must link
// to the worktree's packages, or the masters would run this tree's code), copy test/fuzz and
// test/support/masters.ts into it and run there:
//   git worktree add /tmp/wt 5cceb1a && cd /tmp/wt && mkdir -p node_modules/@flotilla
//   for e in /work/main/node_modules/* /work/main/node_modules/.[!.]*; do [ "$(basename $e)" = @flotilla ] || ln -s $e node_modules/; done
//   for p in packages/*; do ln -s ../../$p node_modules/@flotilla/; done
//   npx tsx test/fuzz/main.ts --seconds 90 --seed 7 --livez-fail-ms 1000   (that code has no stall log: /livez is the measure)
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { runCampaign } from './campaign.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string', multiple: true },
    'old-space': { type: 'string', default: '512' },
    concurrency: { type: 'string', default: '6' },
    only: { type: 'string' },
    'no-mute': { type: 'boolean', default: false },
    'no-restart': { type: 'boolean', default: false },
    'livez-fail-ms': { type: 'string', default: '0' },
    'timeout-ms': { type: 'string', default: '15000' },
    out: { type: 'string' },
  },
  strict: true,
});

const num = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};

const seeds = (values.seed ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '').map((s) => Math.trunc(num('seed', s)));
if (seeds.length === 0) seeds.push(randomInt(1, 2 ** 31 - 1));

const summary = await runCampaign({
  seconds: num('seconds', values.seconds),
  seeds,
  oldSpaceMb: num('old-space', values['old-space']),
  concurrency: Math.max(1, Math.trunc(num('concurrency', values.concurrency))),
  mute: !values['no-mute'],
  restart: !values['no-restart'],
  livezFailMs: num('livez-fail-ms', values['livez-fail-ms']),
  timeoutMs: num('timeout-ms', values['timeout-ms']),
  ...(values.only === undefined ? {} : { only: values.only.split(',').map((s) => s.trim()) }),
  ...(values.out === undefined ? {} : { outDir: values.out }),
});
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(summary.pass ? 0 : 1);

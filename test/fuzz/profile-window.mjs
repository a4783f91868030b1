// What a master's main thread ran during one stall, from its CPU profile:
//   FUZZ_PROFILE_DIR=/tmp/prof node --import tsx --test test/fuzz/short.test.ts
//   node test/fuzz/profile-window.mjs /tmp/prof/CPU.…PID.0.001.cpuprofile HR_FROM_US HR_TO_US
// with the pid, hrFromUs and hrToUs of a stall finding (the watchdog's log line). Prints the
// functions that ran longest in the window, by their own time and with what they called.
import { readFileSync } from 'node:fs';

const [file, from, to] = process.argv.slice(2);
if (file === undefined || from === undefined || to === undefined) {
  console.error('usage: node test/fuzz/profile-window.mjs FILE.cpuprofile HR_FROM_US HR_TO_US');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
const name = (id) => {
  const f = nodes.get(id).callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
};
const own = new Map();
const within = new Map();
let t = profile.startTime;
let sampled = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  if (t < Number(from) || t > Number(to)) continue;
  const id = profile.samples[i];
  const d = profile.timeDeltas[i + 1] ?? 0;
  sampled += d;
  own.set(name(id), (own.get(name(id)) ?? 0) + d);
  const seen = new Set();
  for (let x = id; x !== undefined; x = parentOf.get(x)) {
    const n = name(x);
    if (seen.has(n) || n.startsWith('(root)')) continue;
    seen.add(n);
    within.set(n, (within.get(n) ?? 0) + d);
  }
}
const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([f, d]) => `  ${(d / 1000).toFixed(0).padStart(5)} ms  ${f}`).join('\n');
console.log(`window ${((Number(to) - Number(from)) / 1000).toFixed(0)} ms, ${(sampled / 1000).toFixed(0)} ms sampled`);
console.log(`own time:\n${top(own, 12)}`);
console.log(`with what they called:\n${top(within, 30)}`);

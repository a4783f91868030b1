// The test command itself. Once a chaos test failed with its load's clients still retrying;
// Node's test runner waits for a file's event loop to empty, so the run never ended and CI
// stopped at its 90 minutes with no summary. npm test now passes --test-force-exit: a file
// ends once its tests have, whatever it left open (its 'exit' handlers, which kill the
// processes the tests started, still run).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/leaks-a-handle.test.mjs', import.meta.url));

/** The node flags of an npm script (everything between `node` and the first file pattern). */
function runnerFlags(script: string): string[] {
  const scripts = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
  const flags: string[] = [];
  for (const part of scripts[script]!.split('&&')) {
    const words = part.trim().split(/\s+/);
    if (!words.includes('node') || !words.includes('--test')) continue;
    for (const w of words.slice(words.indexOf('node') + 1)) if (w.startsWith('--') && w !== '--import') flags.push(w);
  }
  return flags;
}

for (const script of ['test', 'test:soak']) {
  test(`a test file that fails with a timer left running still ends under \`npm run ${script}\`'s flags`, async () => {
    const flags = runnerFlags(script);
    assert.ok(flags.includes('--test'), `${script} runs node --test`);
    // Without NODE_TEST_CONTEXT, which tells a runner it reports to a parent runner.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    // In a process group of its own: the runner starts the file in a process of its own, and
    // both go if the run does not end.
    const child = spawn(process.execPath, [...new Set(flags)].concat(FIXTURE), { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    // Without the flag the run never ends: it is killed after 30 s, and the test fails.
    const killer = setTimeout(killGroup, 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(killer);
    killGroup();
    assert.equal(signal, null, `the run ended by itself (flags: ${flags.join(' ')})`);
    assert.equal(code, 1, 'and reported the failure');
    assert.match(out, /# fail 1/);
  });
}

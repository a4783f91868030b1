// The watchdog the fuzz campaign and operators read: a loop held by this process's own work is
// reported as a stall with busyMs near its length; a loop that was blocked without working (the
// machine did not run it) is reported with a small busyMs; an unhandled rejection is logged,
// not fatal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Logger } from '@flotilla/wire';
import { startWatchdog } from '../src/watchdog.ts';

function recorder(): { logger: Logger; lines: { msg: string; fields: Record<string, unknown> }[] } {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const logger: Logger = {
    info: (fields, msg) => void lines.push({ msg, fields }),
    warn: (fields, msg) => void lines.push({ msg, fields }),
    error: (fields, msg) => void lines.push({ msg, fields }),
    child: () => logger,
  };
  return { logger, lines };
}

const until = async (check: () => boolean): Promise<void> => {
  const deadline = Date.now() + 5000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
};

test('300 ms of CPU work on the event loop is reported as a stall of about that much busy time', async () => {
  const { logger, lines } = recorder();
  const dog = startWatchdog(logger);
  try {
    await new Promise((r) => setTimeout(r, 50));
    // 300 ms of this process's CPU, however long the machine takes to give it.
    const from = process.cpuUsage();
    let x = 0;
    for (;;) {
      for (let i = 0; i < 100_000; i++) x += Math.sqrt(x + i);
      const used = process.cpuUsage(from);
      if ((used.user + used.system) / 1000 >= 300) break;
    }
    await until(() => lines.some((l) => l.msg === 'event loop stalled'));
    const stall = lines.filter((l) => l.msg === 'event loop stalled').sort((a, b) => Number(b.fields['stallMs']) - Number(a.fields['stallMs']))[0];
    assert.ok(stall !== undefined, 'a stall was reported');
    assert.ok(Number(stall.fields['stallMs']) >= 250, JSON.stringify(stall.fields));
    assert.ok(Number(stall.fields['busyMs']) >= 250, `busy while it worked: ${JSON.stringify(stall.fields)}`);
    assert.ok(Number(stall.fields['gcMs']) < 100, `and not collecting garbage: ${JSON.stringify(stall.fields)}`);
    assert.ok(dog.maxBusyMs >= 250);
  } finally {
    dog.stop();
  }
});

test('a loop blocked 300 ms without working is a stall whose busyMs stays small', async () => {
  const { logger, lines } = recorder();
  const dog = startWatchdog(logger);
  try {
    await new Promise((r) => setTimeout(r, 50));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // blocked, using no CPU
    await until(() => lines.some((l) => l.msg === 'event loop stalled'));
    const stall = lines.filter((l) => l.msg === 'event loop stalled').sort((a, b) => Number(b.fields['stallMs']) - Number(a.fields['stallMs']))[0];
    assert.ok(stall !== undefined, 'a stall was reported');
    assert.ok(Number(stall.fields['stallMs']) >= 250, JSON.stringify(stall.fields));
    assert.ok(Number(stall.fields['busyMs']) < 100, `not busy while blocked: ${JSON.stringify(stall.fields)}`);
  } finally {
    dog.stop();
  }
});

test('a loop that waits while another thread works is not busy (Linux: the main thread\'s own time)', { skip: process.platform !== 'linux' && 'the main thread\'s CPU time is read from /proc' }, async () => {
  // Found by the fuzz campaign: busyMs was the whole process's CPU time, so a master whose
  // loop waited while the garbage collector's helper threads or level's compactions worked
  // was reported as held by its own work.
  const { logger, lines } = recorder();
  const dog = startWatchdog(logger);
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.postMessage("spinning"); const t = Date.now(); while (Date.now() - t < 600) {}', { eval: true });
  try {
    await new Promise((r) => worker.once('message', r));
    await new Promise((r) => setTimeout(r, 50));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // blocked, while the worker spins
    await until(() => lines.some((l) => l.msg === 'event loop stalled'));
    const stall = lines.filter((l) => l.msg === 'event loop stalled').sort((a, b) => Number(b.fields['stallMs']) - Number(a.fields['stallMs']))[0];
    assert.ok(stall !== undefined, 'a stall was reported');
    assert.ok(Number(stall.fields['stallMs']) >= 250, JSON.stringify(stall.fields));
    assert.ok(Number(stall.fields['busyMs']) < 100, `not busy while the other thread worked: ${JSON.stringify(stall.fields)}`);
  } finally {
    dog.stop();
    await worker.terminate();
  }
});

test('a stall that is the garbage collector\'s pause says so in gcMs', () => {
  // In a process of its own, with --expose-gc: a full collection of a heap of ~4 million objects.
  const script = `
    import { startWatchdog } from ${JSON.stringify(new URL('../src/watchdog.ts', import.meta.url).href)};
    const lines = [];
    const log = (fields, msg) => lines.push({ msg, fields });
    const dog = startWatchdog({ info: log, warn: log, error: log, child() { return this; } });
    const heap = [];
    for (let i = 0; i < 4_000_000; i++) heap.push({ i, s: 'x' + i });
    setTimeout(() => {
      const t = performance.now();
      while (performance.now() - t < 150) globalThis.gc();
      setTimeout(() => { dog.stop(); console.log(JSON.stringify({ lines, kept: heap.length })); }, 100);
    }, 100);
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const { lines } = JSON.parse(out) as { lines: { msg: string; fields: { stallMs: number; gcMs: number } }[] };
  const stall = lines.filter((l) => l.msg === 'event loop stalled').sort((a, b) => b.fields.stallMs - a.fields.stallMs)[0];
  assert.ok(stall !== undefined, `a stall was reported: ${out.slice(0, 300)}`);
  assert.ok(stall.fields.gcMs >= stall.fields.stallMs * 0.5, `most of it was the collector's: ${JSON.stringify(stall.fields)}`);
});

test('an unhandled rejection is logged as a bug, and the process goes on', () => {
  // In a process of its own: the test runner fails any test during which a rejection goes unhandled.
  const script = `
    import { startWatchdog } from ${JSON.stringify(new URL('../src/watchdog.ts', import.meta.url).href)};
    const lines = [];
    const log = (fields, msg) => lines.push({ msg, fields });
    startWatchdog({ info: log, warn: log, error: log, child() { return this; } });
    void Promise.reject(new Error('nobody caught this'));
    setTimeout(() => { console.log(JSON.stringify(lines)); }, 200);
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const lines = JSON.parse(out) as { msg: string; fields: { err?: string } }[];
  const line = lines.find((l) => l.msg === 'unhandled rejection (a bug)');
  assert.match(String(line?.fields.err), /nobody caught this/, out);
});

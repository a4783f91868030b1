// What a long-running process (a master, an agent) watches in itself: event-loop stalls and
// unhandled rejections. Both are bugs we want to see, not assume away: a stall long enough
// stops Raft heartbeats and deposes a leader; an unhandled rejection is a promise nobody
// answered (Node's default would exit the process and take a master down with it).
//
// Log lines (JSON, stderr), read by operators and by the fuzz campaign:
//   {"msg": "event loop stalled", "stallMs": N, "busyMs": M, "gcMs": G, "hrFromUs", "hrToUs"}
//       stallMs: how late a timer ran;
//       busyMs: at most stallMs, the CPU time the event loop's thread used meanwhile — a loop
//       held by our own work is busy the whole time, one the machine did not schedule is not,
//       and neither is one that waited while other threads worked (the garbage collector's
//       helpers, level's compactions and fsyncs in libuv's pool). On Linux that is the main
//       thread's own time, from /proc (10 ms steps); elsewhere the whole process's.
//       gcMs: how much of the stall the garbage collector's pauses took (its main-thread
//       part), so a stall of a big heap's collection is told from one of our own code.
//       hrFromUs, hrToUs: the stall on the monotonic clock (process.hrtime, µs) that a
//       --cpu-prof profile is timed by (test/fuzz/profile-window.mjs cuts one there).
//   {"msg": "unhandled rejection (a bug)", "err": stack}
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import type { Logger } from '@flotilla/wire';

/** Timers this much late are reported. */
export const STALL_REPORT_MS = 100;
const TICK_MS = 20;

export interface Watchdog {
  /** The longest stall seen (wall-clock ms) and the longest busy one. */
  readonly maxStallMs: number;
  readonly maxBusyMs: number;
  readonly unhandled: number;
  stop(): void;
}

/** The main thread's CPU time in ms (Linux: /proc/self/task/PID/stat), else undefined. */
function mainThreadCpuMs(): number | undefined {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ = 100
  } catch {
    return undefined;
  }
}

/** The CPU clock busyMs is measured with: the main thread's where it can be read. */
function cpuClock(): () => number {
  if (mainThreadCpuMs() !== undefined) {
    // A read that fails later (out of descriptors, say) keeps the last value, not 0.
    let lastMs = 0;
    return () => (lastMs = mainThreadCpuMs() ?? lastMs);
  }
  return () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}

export function startWatchdog(logger: Logger, reportMs = STALL_REPORT_MS): Watchdog {
  const cpuMs = cpuClock();
  let last = performance.now();
  let cpu = cpuMs();
  const state = { maxStallMs: 0, maxBusyMs: 0, unhandled: 0 };
  // The collector's recent pauses (performance clock). Their entries arrive a little after
  // the pause, so a stall is reported one tick after it is seen.
  const pauses: { from: number; to: number }[] = [];
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ from: e.startTime, to: e.startTime + e.duration });
    if (pauses.length > 256) pauses.splice(0, pauses.length - 256);
  });
  gc.observe({ entryTypes: ['gc'] });
  let seen: { from: number; to: number; stallMs: number; busyMs: number } | undefined;
  const report = (): void => {
    if (seen === undefined) return;
    const { from, to, stallMs, busyMs } = seen;
    seen = undefined;
    let gcMs = 0;
    for (const p of pauses) gcMs += Math.max(0, Math.min(to, p.to) - Math.max(from, p.from));
    // The window on the monotonic clock a CPU profile (--cpu-prof) is timed by, to cut it there.
    const hrNowUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
    logger.warn({ stallMs: Math.round(stallMs), busyMs: Math.round(busyMs), gcMs: Math.round(Math.min(gcMs, stallMs)), hrFromUs: Math.round(hrNowUs + from * 1000), hrToUs: Math.round(hrNowUs + to * 1000) }, 'event loop stalled');
  };
  const timer = setInterval(() => {
    report();
    const now = performance.now();
    const cpuNow = cpuMs();
    const used = cpuNow - cpu;
    cpu = cpuNow;
    const stallMs = Math.max(0, now - last - TICK_MS);
    const from = last;
    last = now;
    const busyMs = Math.min(stallMs, used);
    if (stallMs > state.maxStallMs) state.maxStallMs = stallMs;
    if (busyMs > state.maxBusyMs) state.maxBusyMs = busyMs;
    if (stallMs > reportMs) seen = { from, to: now, stallMs, busyMs };
  }, TICK_MS);
  timer.unref();
  const onRejection = (reason: unknown): void => {
    state.unhandled++;
    logger.error({ err: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled rejection (a bug)');
  };
  process.on('unhandledRejection', onRejection);
  return {
    get maxStallMs() {
      return state.maxStallMs;
    },
    get maxBusyMs() {
      return state.maxBusyMs;
    },
    get unhandled() {
      return state.unhandled;
    },
    stop() {
      clearInterval(timer);
      gc.disconnect();
      report();
      process.off('unhandledRejection', onRejection);
    },
  };
}

// What a long-running process (a master, an agent) watches in itself: event-loop stalls and
// unhandled rejections. Both are bugs we want to see, not assume away: a stall long enough
// stops Raft heartbeats and deposes a leader; an unhandled rejection is a promise nobody
// answered (Node's default would exit the process and take a master down with it).
//
// Log lines (JSON, stderr), read by operators and by the fuzz campaign:
//   {"msg": "event loop stalled", "stallMs": N, "busyMs": M}   stallMs: how late a timer ran;
//       busyMs: at most stallMs, the CPU time the process used meanwhile — a loop held by our own
//       work is busy the whole time, one the machine did not schedule is not.
//   {"msg": "unhandled rejection (a bug)", "err": stack}
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

export function startWatchdog(logger: Logger, reportMs = STALL_REPORT_MS): Watchdog {
  let last = performance.now();
  let cpu = process.cpuUsage();
  const state = { maxStallMs: 0, maxBusyMs: 0, unhandled: 0 };
  const timer = setInterval(() => {
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const stallMs = Math.max(0, now - last - TICK_MS);
    last = now;
    const busyMs = Math.min(stallMs, (used.user + used.system) / 1000);
    if (stallMs > state.maxStallMs) state.maxStallMs = stallMs;
    if (busyMs > state.maxBusyMs) state.maxBusyMs = busyMs;
    if (stallMs > reportMs) logger.warn({ stallMs: Math.round(stallMs), busyMs: Math.round(busyMs) }, 'event loop stalled');
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
      process.off('unhandledRejection', onRejection);
    },
  };
}

// Bulk work shared by every request of a process, a slice per turn of the event loop.
//
// A long list or a watch's initial list yields between its chunks, but yielding alone does
// not keep a turn of the loop short: twenty watches that resume in the same turn each do
// their chunk before any timer runs, and the turn is twenty chunks long (the fuzz campaign
// found turns of 170-420 ms of a master's CPU that way: Raft's heartbeats wait for them).
// Here every piece of such work asks pace() first. The first to ask in a turn starts a slice
// of SLICE_MS; once it is spent, whoever asks waits for a timer of 0 ms, which runs in a later
// turn, after the timers that were due (the watchdog's, Raft's ticks) — so each turn does at
// most about one slice of bulk work, whoever's it is.

/** Bulk work one turn of the loop does before the rest waits for a later turn. */
export const SLICE_MS = 10;

export interface Pacer {
  /**
   * undefined: go on now; a promise: it resolves in a later turn, once this caller has been
   * given room in that turn's slice (so a caller that waited does not add its piece to a
   * slice that others have already spent).
   */
  pace(): Promise<void> | undefined;
}

/**
 * A pacer on `now` (a clock in ms) with slices of `sliceMs`. The slice is over once a check
 * callback (setImmediate: the end of this turn, or of the next if asked from that phase) has
 * run, or once `sliceMs` has passed.
 */
export function createPacer(now: () => number = () => performance.now(), sliceMs = SLICE_MS): Pacer {
  let sliceStart: number | undefined;
  const endSlice = (): void => {
    sliceStart = undefined;
  };
  const admit = (): boolean => {
    const t = now();
    if (sliceStart === undefined) {
      sliceStart = t;
      setImmediate(endSlice);
    }
    return t - sliceStart < sliceMs;
  };
  return {
    pace() {
      if (admit()) return undefined;
      return new Promise((resolve) => {
        const retry = (): void => {
          if (admit()) resolve();
          else setTimeout(retry, 0);
        };
        setTimeout(retry, 0);
      });
    },
  };
}

const shared = createPacer();

/** The process's pacer: every request's bulk work shares its slices. */
export function pace(): Promise<void> | undefined {
  return shared.pace();
}

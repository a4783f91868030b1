// What /proc says about a process: whether a pid still names the process the runtime started
// (pids are reused, so the start time from /proc/<pid>/stat field 22 is compared too), and which
// processes are left in a container's process group. Linux only, like the rest of the runtime.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  /** One letter: R, S, D, Z (zombie), T, … */
  readonly state: string;
  readonly pgrp: number;
  readonly session: number;
  /** Clock ticks after boot when the process started (field 22), as a decimal string. */
  readonly startTime: string;
}

/** /proc/<pid>/stat, or undefined when there is no such process (or it cannot be read). */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: the fields
  // that follow start after the last ')'. Field n (n ≥ 3) is then at index n - 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state, , pgrp, session] = fields;
  const startTime = fields[22 - 3];
  if (state === undefined || pgrp === undefined || session === undefined || startTime === undefined) return undefined;
  return { state, pgrp: Number(pgrp), session: Number(session), startTime };
}

/**
 * Whether `pid` is still the live process that started at `startTime`. A zombie counts as gone:
 * it has exited and only waits to be reaped (after an agent restart nobody may reap it).
 */
export function isAlive(pid: number, startTime: string | undefined): boolean {
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === 'Z') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/**
 * Live processes of the session that `leader` started with setsid() (its process group and
 * session ids are the leader's pid), started no earlier than the leader: what is left of a
 * container whose main process is gone. The start-time bound keeps a reused pid from matching.
 */
export function sessionMembers(leader: number, leaderStartTime: string): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProcStat(Number(name));
    if (stat === undefined || stat.state === 'Z' || stat.session !== leader || stat.pgrp !== leader) continue;
    if (BigInt(stat.startTime) >= BigInt(leaderStartTime)) members.push(Number(name));
  }
  return members;
}

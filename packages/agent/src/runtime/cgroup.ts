// CPU and memory limits through cgroup v2, where the agent may write it.
//
// Layout: the agent's own cgroup (from /proc/self/cgroup's "0::/path" line, under the cgroup2
// mount) gets a child `flotilla-<node>/` with the cpu and memory controllers enabled for its
// children, and each container gets `flotilla-<node>/<container id>/` with
//   cpu.max     "<quota> 100000"   (cpuMillis / 1000 CPUs per 100 ms period, at least 1 ms)
//   memory.max  "<bytes>"          (and memory.swap.max 0 when the kernel has it, so the limit is real)
// The container's process joins its cgroup before it execs the program (see wrapInCgroup), so
// nothing of it ever runs outside the limits. After it exits, memory.events says whether the
// kernel OOM-killed it, and the directory is removed.
//
// cgroup v2's "no internal processes" rule: a cgroup that holds processes cannot hand
// controllers to its children. So when enabling them in the agent's cgroup is refused with
// EBUSY, the agent moves itself into a leaf `flotilla-agent/` next to `flotilla-<node>/` and
// tries again; if other processes share its cgroup, limits are not enforced and the note says
// how to start the agent in a cgroup of its own (as systemd does for a service with Delegate=yes).
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 100_000;
/** The kernel refuses quotas below 1 ms (Kubernetes' MinQuotaPeriod). */
const MIN_QUOTA_US = 1_000;

export type CgroupSetup =
  | { readonly enforced: true; readonly note: string; /** Where the containers' cgroups go. */ readonly base: string }
  | { readonly enforced: false; readonly note: string };

const NOT_ENFORCED = 'CPU and memory limits are not enforced';

/**
 * Finds (or, with `root`, uses) the agent's cgroup v2 directory and prepares
 * `flotilla-<nodeName>/` in it. Never throws: what went wrong is in the note.
 */
export function setUpCgroups(nodeName: string, root?: string): CgroupSetup {
  const found = root === undefined ? findOwnCgroup() : { dir: root, hint: '' };
  if ('problem' in found) return { enforced: false, note: `cgroup v2 is not available here (${found.problem}); ${NOT_ENFORCED}` };
  const own = found.dir;
  let controllers: string[];
  try {
    controllers = readFileSync(join(own, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return { enforced: false, note: `cgroup v2 is not available here (${own} has no cgroup.controllers, so it is not a cgroup v2 directory); ${NOT_ENFORCED}` };
  }
  const missing = ['cpu', 'memory'].filter((c) => !controllers.includes(c));
  if (missing.length > 0) {
    return { enforced: false, note: `cgroup v2 is not available here (the ${missing.join(' and ')} controller${missing.length > 1 ? 's are' : ' is'} not available in ${own}${found.hint}); ${NOT_ENFORCED}` };
  }
  const base = join(own, `flotilla-${nodeName.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  const existed = existsSync(base); // after an agent restart: its containers may still be in it
  try {
    mkdirSync(base, { recursive: true });
  } catch (err) {
    return { enforced: false, note: `cgroup v2 is present but the agent cannot create ${base} (${errorCode(err)}); ${NOT_ENFORCED}` };
  }
  const problem = enableControllers(own, () => {
    const leaf = join(own, 'flotilla-agent');
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(leaf, 'cgroup.procs'), String(process.pid));
  }) ?? enableControllers(base);
  if (problem !== undefined) {
    if (!existed) removeCgroup(base);
    return { enforced: false, note: `cgroup v2 is present but ${problem}; ${NOT_ENFORCED}` };
  }
  return { enforced: true, note: `CPU and memory limits are enforced with cgroup v2 under ${base}`, base };
}

/**
 * The agent's cgroup v2 directory, or why there is none. `hint` explains a hybrid layout (v1
 * at /sys/fs/cgroup, v2 beside it), where cpu and memory belong to the v1 hierarchies.
 */
function findOwnCgroup(): { dir: string; hint: string } | { problem: string } {
  let path: string | undefined;
  try {
    path = /^0::(\/.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  } catch {
    return { problem: 'cannot read /proc/self/cgroup' };
  }
  if (path === undefined) return { problem: '/proc/self/cgroup has no "0::" line, so the agent is in no cgroup v2 hierarchy' };
  let mount: string | undefined;
  try {
    // mountinfo: "<id> <parent> <dev> <root> <mount point> <options> … - <fs type> …"
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (right?.startsWith('cgroup2 ') && mount !== '/sys/fs/cgroup') mount = left?.split(' ')[4];
    }
  } catch {
    return { problem: 'cannot read /proc/self/mountinfo' };
  }
  if (mount === undefined) return { problem: 'no cgroup2 file system is mounted' };
  const hint = mount === '/sys/fs/cgroup' ? '' : `: /sys/fs/cgroup is cgroup v1 and ${mount} is the hybrid layout's v2 hierarchy, whose controllers are bound to v1`;
  return { dir: join(mount, path), hint };
}

/**
 * Makes cpu and memory available to the children of `dir`. `makeRoom` runs once if the kernel
 * says `dir` holds processes (EBUSY). Returns what went wrong, or undefined.
 */
function enableControllers(dir: string, makeRoom?: () => void): string | undefined {
  const file = join(dir, 'cgroup.subtree_control');
  const enabled = (): boolean => {
    const words = readIfExists(file).split(/\s+/).map((w) => w.replace(/^\+/, ''));
    return words.includes('cpu') && words.includes('memory');
  };
  try {
    if (enabled()) return undefined;
    try {
      writeFileSync(file, '+cpu +memory');
    } catch (err) {
      if (errorCode(err) !== 'EBUSY' || makeRoom === undefined) throw err;
      makeRoom();
      try {
        writeFileSync(file, '+cpu +memory');
      } catch (again) {
        if (errorCode(again) !== 'EBUSY') throw again;
        return `${dir} holds other processes besides the agent, and cgroup v2 lets only a cgroup without processes give controllers to its children (start the agent in a cgroup of its own, e.g. a systemd service with Delegate=yes)`;
      }
    }
    return undefined;
  } catch (err) {
    return `the agent cannot enable the cpu and memory controllers in ${file} (${errorCode(err)})`;
  }
}

/**
 * Creates a container's cgroup under `base` with its limits. Throws an Error saying what could
 * not be written.
 */
export function createContainerCgroup(base: string, id: string, limits: { readonly cpuMillis?: number; readonly memoryBytes?: number } | undefined): string {
  const dir = join(base, id);
  mkdirSync(dir, { recursive: true });
  const write = (name: string, value: string): void => {
    try {
      writeFileSync(join(dir, name), value);
    } catch (err) {
      throw new Error(`cannot write "${value}" to ${join(dir, name)} (${errorCode(err)})`);
    }
  };
  const cpuMillis = limits?.cpuMillis;
  if (cpuMillis !== undefined && cpuMillis > 0) {
    write('cpu.max', `${Math.max(MIN_QUOTA_US, Math.round((cpuMillis * PERIOD_US) / 1000))} ${PERIOD_US}`);
  }
  const memoryBytes = limits?.memoryBytes;
  if (memoryBytes !== undefined && memoryBytes > 0) {
    write('memory.max', String(Math.floor(memoryBytes)));
    if (existsSync(join(dir, 'memory.swap.max'))) write('memory.swap.max', '0');
  }
  return dir;
}

/**
 * The argv that runs `program args…` inside the cgroup `dir`: a POSIX shell writes its own pid
 * ($$) to cgroup.procs and then execs the program, which keeps that pid — so the process is in
 * its cgroup before the program's first instruction. The shell adds PWD (dash; bash also SHLVL)
 * to the environment it passes on: the wrapper puts back exactly what `env` had for those.
 */
export function wrapInCgroup(dir: string, program: string, args: readonly string[], env: Readonly<Record<string, string>>): { program: string; args: string[] } {
  const script = ['echo $$ > "$0/cgroup.procs" || exit 125'];
  const values: string[] = [];
  for (const name of ['PWD', 'OLDPWD', 'SHLVL'] as const) {
    const value = env[name];
    if (value === undefined) {
      script.push(`unset ${name}`);
    } else {
      script.push(`export ${name}="$1"`, 'shift');
      values.push(value);
    }
  }
  script.push('exec "$@"');
  return { program: '/bin/sh', args: ['-c', script.join('; '), dir, ...values, program, ...args] };
}

/** Whether the kernel OOM-killed a process of the cgroup (memory.events "oom_kill N", N > 0). */
export function wasOomKilled(dir: string): boolean {
  try {
    const n = /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1];
    return n !== undefined && Number(n) > 0;
  } catch {
    return false;
  }
}

/**
 * Removes a cgroup directory; returns an error code when the kernel refuses (EBUSY while a
 * process of it is still exiting). A plain directory holding files (not a cgroup, e.g. a test's
 * fake hierarchy) is removed with them: on cgroupfs rmdir never fails with ENOTEMPTY because of
 * the interface files.
 */
export function removeCgroup(dir: string): string | undefined {
  try {
    rmdirSync(dir);
    return undefined;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return undefined;
    if (code !== 'ENOTEMPTY') return code;
    try {
      rmSync(dir, { recursive: true });
      return undefined;
    } catch (again) {
      return errorCode(again);
    }
  }
}

/** A file's text; '' when it does not exist (a fresh directory of a fake hierarchy in tests). */
function readIfExists(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return '';
    throw err;
  }
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

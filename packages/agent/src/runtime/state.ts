// The runtime's on-disk memory: one small JSON record per container in
// `<dataDir>/containers/<id>.json`, so an agent restarted on the same data directory finds the
// processes it started (pid, process group, start time against pid reuse) and the exits it saw.
// A record is replaced atomically (write a temporary file, rename it over the record) whenever
// the container changes, so an agent that crashes leaves either the old or the new record. It
// is not fsynced: what it describes is processes, which do not survive the machine going down
// either, and the kernel keeps a crashed agent's writes (an fsync per container change made
// starting 100 pods take seconds, through the libuv thread pool). A record torn by a power cut
// is skipped as corrupt, harmlessly: its process is gone too. The
// environment is not stored: it may hold secrets, and a recovered container is never restarted
// from its record (the kubelet creates a new one).
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerState } from './types.ts';

export interface ContainerRecord {
  readonly id: string;
  readonly podUid: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly containerName: string;
  readonly attempt: number;
  readonly image?: string;
  /** What runs: the resolved program and its arguments (without the cgroup wrapper). */
  readonly program: string;
  readonly args: readonly string[];
  readonly logPath: string;
  /** The container's cgroup v2 directory, when limits are enforced. */
  readonly cgroupDir?: string;
  readonly state: ContainerState;
  /** The process, which also leads its process group and session (pgid = sid = pid). */
  readonly pid?: number;
  /** /proc/<pid>/stat field 22, to tell this process from a later one with the same pid. */
  readonly startTime?: string;
  /** ISO timestamps. */
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly reason?: string;
}

/** Reads and writes the records of one data directory. */
export class RecordStore {
  readonly dir: string;
  /** Writes of one record, chained so they reach the disk in the order they were made. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'containers');
    mkdirSync(this.dir, { recursive: true });
  }

  /** Every readable record; a corrupt one is reported through `onCorrupt` and deleted. */
  loadAll(onCorrupt: (file: string, problem: string) => void): ContainerRecord[] {
    const records: ContainerRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      const file = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        // A write interrupted by a crash: the record it was replacing is still there.
        rmSync(file, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      let problem: string | undefined;
      try {
        const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
        problem = recordProblem(parsed, name.slice(0, -'.json'.length));
        if (problem === undefined) records.push(parsed as ContainerRecord);
      } catch (err) {
        problem = (err as Error).message;
      }
      if (problem !== undefined) {
        onCorrupt(file, problem);
        rmSync(file, { force: true });
      }
    }
    return records;
  }

  /** Replaces the record; resolves once it is written (or the write failed and was logged by the caller). */
  save(record: ContainerRecord): Promise<void> {
    return this.enqueue(record.id, () => writeAtomically(join(this.dir, `${record.id}.json`), `${JSON.stringify(record)}\n`));
  }

  delete(id: string): Promise<void> {
    return this.enqueue(id, () => rm(join(this.dir, `${id}.json`), { force: true }));
  }

  /** Resolves once every write started so far has finished. */
  async flush(): Promise<void> {
    await Promise.all(this.pending.values());
  }

  private enqueue(id: string, write: () => Promise<void>): Promise<void> {
    const previous = this.pending.get(id) ?? Promise.resolve();
    const next = previous.then(write, write);
    const tracked = next.catch(() => undefined);
    this.pending.set(id, tracked);
    void tracked.then(() => {
      if (this.pending.get(id) === tracked) this.pending.delete(id);
    });
    return next;
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/** Why `value` is not a usable record with this id, or undefined when it is. */
function recordProblem(value: unknown, id: string): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (r['id'] !== id) return `its id ${JSON.stringify(r['id'])} does not match the file name`;
  for (const key of ['podUid', 'podNamespace', 'podName', 'containerName', 'program', 'logPath', 'createdAt'] as const) {
    if (typeof r[key] !== 'string') return `${key} is not a string`;
  }
  if (!Number.isInteger(r['attempt'])) return 'attempt is not an integer';
  if (!Array.isArray(r['args']) || !r['args'].every((a) => typeof a === 'string')) return 'args is not a list of strings';
  if (r['state'] !== 'created' && r['state'] !== 'running' && r['state'] !== 'exited') return `state ${JSON.stringify(r['state'])} is not created, running or exited`;
  if (r['pid'] !== undefined && !(Number.isInteger(r['pid']) && (r['pid'] as number) > 0)) return 'pid is not a positive integer';
  if (r['state'] === 'running' && r['pid'] === undefined) return 'a running container without a pid';
  if (r['startTime'] !== undefined && (typeof r['startTime'] !== 'string' || !/^\d+$/.test(r['startTime']))) return 'startTime is not a number of clock ticks';
  for (const key of ['image', 'cgroupDir', 'startedAt', 'finishedAt', 'signal', 'reason'] as const) {
    if (r[key] !== undefined && typeof r[key] !== 'string') return `${key} is not a string`;
  }
  if (r['exitCode'] !== undefined && !Number.isInteger(r['exitCode'])) return 'exitCode is not an integer';
  for (const key of ['createdAt', 'startedAt', 'finishedAt'] as const) {
    if (r[key] !== undefined && Number.isNaN(Date.parse(r[key] as string))) return `${key} is not a date`;
  }
  return undefined;
}

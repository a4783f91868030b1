// One container as the process runtime tracks it, and its two outward forms: the ContainerInfo
// the kubelet sees and the record kept on disk for recovery (state.ts).
import type { ChildProcess } from 'node:child_process';
import type { ContainerRecord } from './state.ts';
import type { ContainerConfig, ContainerInfo, ContainerState } from './types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One container as the runtime tracks it. */
export interface Container {
  readonly id: string;
  readonly podUid: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly containerName: string;
  readonly attempt: number;
  readonly image: string | undefined;
  readonly program: string;
  readonly args: readonly string[];
  readonly logPath: string;
  readonly createdAt: Date;
  /** Only until start(): the environment is not kept longer than needed. */
  config: ContainerConfig | undefined;
  cgroupDir: string | undefined;
  state: ContainerState;
  pid: number | undefined;
  startTime: string | undefined;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  exitCode: number | undefined;
  signal: string | undefined;
  reason: string | undefined;
  /** Our child process, while it runs (close() unrefs it so the agent may exit). */
  child: ChildProcess | undefined;
  /** A process found by recover(): not our child, watched through /proc. */
  adopted: boolean;
  /** Resolves when the container has exited. */
  readonly exited: Promise<void>;
  readonly markExited: () => void;
}

/** A container in state created, with nothing run yet. */
export function newContainer(fields: Pick<Container, 'id' | 'podUid' | 'podNamespace' | 'podName' | 'containerName' | 'attempt' | 'image' | 'program' | 'args' | 'logPath' | 'createdAt'>): Container {
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => {
    markExited = resolve;
  });
  return {
    ...fields,
    config: undefined,
    cgroupDir: undefined,
    state: 'created',
    pid: undefined,
    startTime: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    exitCode: undefined,
    signal: undefined,
    reason: undefined,
    child: undefined,
    adopted: false,
    exited,
    markExited,
  };
}

/** What the kubelet sees: a snapshot, so later changes do not show through. */
export function info(c: Container): ContainerInfo {
  const out: Mutable<ContainerInfo> = {
    id: c.id,
    podUid: c.podUid,
    podNamespace: c.podNamespace,
    podName: c.podName,
    containerName: c.containerName,
    attempt: c.attempt,
    state: c.state,
    createdAt: c.createdAt,
  };
  if (c.pid !== undefined) out.pid = c.pid;
  if (c.startedAt !== undefined) out.startedAt = c.startedAt;
  if (c.finishedAt !== undefined) out.finishedAt = c.finishedAt;
  if (c.exitCode !== undefined) out.exitCode = c.exitCode;
  if (c.signal !== undefined) out.signal = c.signal;
  if (c.reason !== undefined) out.reason = c.reason;
  if (c.image !== undefined) out.image = c.image;
  return out;
}

/** What is kept on disk (no environment: see state.ts). */
export function toRecord(c: Container): ContainerRecord {
  const r: Mutable<ContainerRecord> = {
    id: c.id,
    podUid: c.podUid,
    podNamespace: c.podNamespace,
    podName: c.podName,
    containerName: c.containerName,
    attempt: c.attempt,
    program: c.program,
    args: c.args,
    logPath: c.logPath,
    state: c.state,
    createdAt: c.createdAt.toISOString(),
  };
  if (c.image !== undefined) r.image = c.image;
  if (c.cgroupDir !== undefined) r.cgroupDir = c.cgroupDir;
  if (c.pid !== undefined) r.pid = c.pid;
  if (c.startTime !== undefined) r.startTime = c.startTime;
  if (c.startedAt !== undefined) r.startedAt = c.startedAt.toISOString();
  if (c.finishedAt !== undefined) r.finishedAt = c.finishedAt.toISOString();
  if (c.exitCode !== undefined) r.exitCode = c.exitCode;
  if (c.signal !== undefined) r.signal = c.signal;
  if (c.reason !== undefined) r.reason = c.reason;
  return r;
}

/** A container as an earlier agent left it; the caller decides whether its process still runs. */
export function fromRecord(r: ContainerRecord): Container {
  const c = newContainer({
    id: r.id,
    podUid: r.podUid,
    podNamespace: r.podNamespace,
    podName: r.podName,
    containerName: r.containerName,
    attempt: r.attempt,
    image: r.image,
    program: r.program,
    args: r.args,
    logPath: r.logPath,
    createdAt: new Date(r.createdAt),
  });
  c.cgroupDir = r.cgroupDir;
  c.state = r.state;
  c.pid = r.pid;
  c.startTime = r.startTime;
  c.startedAt = r.startedAt === undefined ? undefined : new Date(r.startedAt);
  c.finishedAt = r.finishedAt === undefined ? undefined : new Date(r.finishedAt);
  c.exitCode = r.exitCode;
  c.signal = r.signal;
  c.reason = r.reason;
  if (c.state === 'exited') c.markExited();
  return c;
}

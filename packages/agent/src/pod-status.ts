// A pod's status from what the kubelet knows of its containers: phase by Kubernetes' rules
// (getPhase), conditions, and containerStatuses with state, lastState, restartCount, ready,
// started. Pure functions, so that the rules are tested on their own.
import { timestamp, type ContainerState, type ContainerStatus, type Pod, type PodCondition, type PodPhase, type PodStatus, type PortMapping } from '@flotilla/api';

/** What the kubelet knows of one container of the pod. */
export interface ContainerView {
  readonly name: string;
  readonly image: string | undefined;
  readonly id: string | undefined;
  readonly state: ContainerState;
  readonly lastState: ContainerState | undefined;
  readonly restartCount: number;
  readonly ready: boolean;
  readonly started: boolean;
}

/** Kubernetes' getPhase for a pod without init containers. */
export function podPhase(restartPolicy: 'Always' | 'OnFailure' | 'Never', containers: readonly ContainerView[]): PodPhase {
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of containers) {
    if (c.state.running !== undefined) running++;
    else if (c.state.terminated !== undefined) {
      stopped++;
      if (c.state.terminated.exitCode === 0) succeeded++;
    } else if (c.lastState?.terminated !== undefined) stopped++; // waiting to restart
    else waiting++;
  }
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    return restartPolicy === 'OnFailure' ? 'Running' : 'Failed';
  }
  return 'Pending';
}

function condition(type: PodCondition['type'], ok: boolean, before: PodStatus | undefined, now: string, reason?: string, message?: string): PodCondition {
  const status = ok ? 'True' : 'False';
  const old = before?.conditions?.find((c) => c.type === type);
  const c: PodCondition = { type, status, lastTransitionTime: old?.status === status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now };
  if (!ok && reason !== undefined) c.reason = reason;
  if (!ok && message !== undefined) c.message = message;
  return c;
}

export interface StatusInputs {
  readonly pod: Pod;
  readonly address: string;
  readonly containers: readonly ContainerView[];
  readonly ports: readonly PortMapping[] | undefined;
  /** When this agent first took the pod up (kept from the pod's status if it has one). */
  readonly startTime: string;
  readonly now?: number;
}

export function podStatus(i: StatusInputs): PodStatus {
  const before = i.pod.status;
  const now = timestamp(i.now ?? Date.now());
  const phase = podPhase(i.pod.spec.restartPolicy ?? 'Always', i.containers);
  const notReady = i.containers.filter((c) => !c.ready).map((c) => c.name);
  const allReady = notReady.length === 0 && phase === 'Running';
  const why = notReady.length === 0 ? undefined : `containers with unready status: [${notReady.join(' ')}]`;
  const finished = phase === 'Succeeded' || phase === 'Failed';
  const status: PodStatus = {
    phase,
    conditions: [
      condition('Initialized', true, before, now),
      condition('Ready', allReady, before, now, finished ? 'PodCompleted' : 'ContainersNotReady', finished ? undefined : why),
      condition('ContainersReady', allReady, before, now, finished ? 'PodCompleted' : 'ContainersNotReady', finished ? undefined : why),
      condition('PodScheduled', true, before, now),
    ],
    hostIP: i.address,
    podIP: i.address,
    startTime: before?.startTime ?? i.startTime,
    containerStatuses: i.containers.map(containerStatus),
  };
  if (i.ports !== undefined && i.ports.length > 0) status.portMappings = [...i.ports];
  return status;
}

function containerStatus(c: ContainerView): ContainerStatus {
  const s: ContainerStatus = { name: c.name, ready: c.ready, restartCount: c.restartCount, started: c.started, state: c.state };
  if (c.lastState !== undefined) s.lastState = c.lastState;
  if (c.image !== undefined) s.image = c.image;
  if (c.id !== undefined) s.containerID = `process://${c.id}`;
  return s;
}

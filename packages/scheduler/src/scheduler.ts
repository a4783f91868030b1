// The scheduler loop: pods without a node come from the pod informer into the scheduling
// queue; one at a time, in order, each is decided against the cache (filter, score, pick),
// assumed on its node at once, and bound in the background — up to maxBindsInFlight binds
// at a time, so they share Raft rounds (the store batches concurrent writes) while the next
// decisions already count the assumed pods. A pod that fits nowhere gets kube-scheduler's
// PodScheduled=False condition and waits for the cluster to change (with per-pod backoff).
// Everything is level-triggered: the queue holds keys, the informer holds the truth.
import { ApiError, timestamp, type ApiClient, type Informer, type InformerFactory, type Node, type Pod, type PodCondition } from '@flotilla/api';
import type { Logger } from '@flotilla/wire';
import { SchedulerCache } from './cache.ts';
import { schedulePod, type ScheduleState } from './core/schedule-pod.ts';
import { Framework } from './framework/framework.ts';
import { schedulingSignature } from './framework/node-info.ts';
import { newPodInfo, podKey, type PodInfo } from './framework/pod-info.ts';
import { defaultProfile, inTreeRegistry } from './framework/registry.ts';
import type { Status } from './framework/status.ts';
import type { Registry, ScorePluginConfig } from './framework/types.ts';
import { SchedulingQueue } from './queue.ts';

/** The shape of packages/controllers' Controller, declared here so the scheduler does not import it. */
export interface Controller {
  readonly name: string;
  start(): void;
  stop(): void;
}

/** Which plugins run, by name; out-of-tree plugins are added through `registry`. */
export interface SchedulerPlugins {
  /** Merged over the in-tree registry (a name here replaces an in-tree plugin). */
  readonly registry?: Registry;
  readonly filter?: readonly string[];
  readonly score?: readonly ScorePluginConfig[];
  readonly bind?: string;
}

export interface SchedulerOptions {
  readonly client: ApiClient;
  readonly informers: InformerFactory;
  readonly logger: Logger;
  /** Milliseconds since the epoch (condition timestamps, backoff). */
  readonly now?: () => number;
  readonly plugins?: SchedulerPlugins;
  /** Binds and status writes outstanding at once (default 100). */
  readonly maxBindsInFlight?: number;
  /** kube-scheduler's percentageOfNodesToScore; 0 (default) is its adaptive percentage. */
  readonly percentageOfNodesToScore?: number;
  /** Per-pod backoff after a failed attempt: initial (default 1000 ms), doubling up to max (default 10 000 ms). */
  readonly podInitialBackoffMs?: number;
  readonly podMaxBackoffMs?: number;
  /** Breaks ties between equally scored nodes (default Math.random). */
  readonly random?: () => number;
  /** Pods naming this scheduler (or none) are ours (default 'default-scheduler'). */
  readonly schedulerName?: string;
}

export interface SchedulerMetrics {
  attempts: number;
  bound: number;
  unschedulable: number;
  bindFailures: number;
}

/** How long one turn of the loop may decide before it yields to I/O (informer events, bind replies). */
const SLICE_MS = 10;

function isAssigned(pod: Pod): boolean {
  return pod.spec.nodeName !== undefined && pod.spec.nodeName !== '';
}

function isTerminal(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function controllerUid(pod: Pod): string | undefined {
  return pod.metadata.ownerReferences?.find((o) => o.controller === true)?.uid;
}

/** Whether a pending pod changed in a way that could change where it fits (not just its status). */
function podSpecChanged(old: Pod, pod: Pod): boolean {
  return (
    JSON.stringify(old.spec) !== JSON.stringify(pod.spec) ||
    JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(pod.metadata.labels ?? {}) ||
    controllerUid(old) !== controllerUid(pod)
  );
}

export class Scheduler implements Controller {
  readonly name = 'scheduler';
  readonly metrics: SchedulerMetrics = { attempts: 0, bound: 0, unschedulable: 0, bindFailures: 0 };

  private readonly client: ApiClient;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly pods: Informer<Pod>;
  private readonly framework: Framework;
  private readonly cache = new SchedulerCache();
  private readonly queue: SchedulingQueue;
  private readonly state: ScheduleState;
  private readonly maxInFlight: number;
  private readonly schedulerName: string;
  private running = false;
  private stopped = false;
  private pumpScheduled = false;
  private inFlight = 0;
  private settledWaiters: (() => void)[] = [];

  constructor(options: SchedulerOptions) {
    this.client = options.client;
    this.logger = options.logger.child({ component: 'scheduler' });
    this.now = options.now ?? Date.now;
    this.maxInFlight = Math.max(1, options.maxBindsInFlight ?? 100);
    this.schedulerName = options.schedulerName ?? 'default-scheduler';
    const p = options.plugins ?? {};
    this.framework = new Framework(
      { ...inTreeRegistry, ...p.registry },
      { filter: p.filter ?? defaultProfile.filter, score: p.score ?? defaultProfile.score, bind: p.bind ?? defaultProfile.bind },
      { client: this.client, logger: this.logger },
    );
    this.state = { nextStartNodeIndex: 0, percentageOfNodesToScore: options.percentageOfNodesToScore ?? 0, random: options.random ?? Math.random };
    this.queue = new SchedulingQueue({
      now: this.now,
      onActive: () => this.pump(),
      ...(options.podInitialBackoffMs === undefined ? {} : { initialBackoffMs: options.podInitialBackoffMs }),
      ...(options.podMaxBackoffMs === undefined ? {} : { maxBackoffMs: options.podMaxBackoffMs }),
    });
    // Handlers keep the cache and queue current from the first list on, so that start() (called
    // once the informers have synced) begins with a complete picture.
    this.pods = options.informers.informer<Pod>('pods').on({
      add: (pod) => this.syncPod(undefined, pod),
      update: (old, pod) => this.syncPod(old, pod),
      delete: (pod) => this.deletePod(pod),
    });
    options.informers.informer<Node>('nodes').on({
      add: (node) => {
        if (this.stopped) return;
        this.cache.addOrUpdateNode(node);
        this.queue.moveAllToActiveOrBackoff();
      },
      update: (old, node) => {
        if (this.stopped) return;
        this.cache.addOrUpdateNode(node);
        if (schedulingSignature(old) !== schedulingSignature(node)) this.queue.moveAllToActiveOrBackoff();
      },
      delete: (node) => {
        if (!this.stopped) this.cache.removeNode(node.metadata.name ?? '');
      },
    });
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // Level-triggered: whatever the handlers saw, every pending pod of ours is queued now.
    for (const pod of this.pods.list()) if (this.isPendingForUs(pod)) this.queue.add(podKey(pod));
    this.logger.info({ pending: this.queue.activeLength, nodes: this.cache.schedulableNodes().length }, 'scheduler started');
    this.pump();
  }

  /** Stops deciding; binds already sent finish on their own (see settled()). */
  stop(): void {
    this.running = false;
    this.stopped = true;
    this.queue.stop();
  }

  /** Resolves once no bind or status write of this scheduler is outstanding. */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  private isPendingForUs(pod: Pod): boolean {
    if (isAssigned(pod) || pod.metadata.deletionTimestamp !== undefined || isTerminal(pod)) return false;
    const name = pod.spec.schedulerName;
    return (name === undefined || name === '' || name === this.schedulerName) && !this.cache.isAssumed(pod.metadata.uid ?? '');
  }

  private syncPod(old: Pod | undefined, pod: Pod): void {
    if (this.stopped) return;
    const key = podKey(pod);
    const uid = pod.metadata.uid ?? '';
    if (isAssigned(pod)) {
      this.queue.done(key);
      const wasHolding = old !== undefined && isAssigned(old) && !isTerminal(old);
      if (isTerminal(pod)) {
        // A finished pod holds nothing (kube-scheduler does not count Succeeded/Failed pods).
        this.cache.removePod(uid);
        if (wasHolding) this.queue.moveAllToActiveOrBackoff();
        return;
      }
      this.cache.addOrUpdateBoundPod(pod);
      if (wasHolding && old.spec.nodeName !== pod.spec.nodeName) this.queue.moveAllToActiveOrBackoff();
      return;
    }
    if (this.cache.isAssumed(uid)) return; // our bind is in flight: the informer has not caught up
    if (!this.isPendingForUs(pod)) {
      this.queue.done(key);
      return;
    }
    if (old !== undefined && podSpecChanged(old, pod)) this.queue.podChanged(key);
    else this.queue.add(key); // no-op when queued: our own status writes do not wake the pod
  }

  private deletePod(pod: Pod): void {
    if (this.stopped) return;
    this.queue.done(podKey(pod));
    const uid = pod.metadata.uid ?? '';
    const held = isAssigned(pod) || this.cache.isAssumed(uid);
    this.cache.removePod(uid);
    if (held) this.queue.moveAllToActiveOrBackoff();
  }

  private pump(): void {
    if (!this.running || this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.runSlice();
    });
  }

  /** Decides pods in queue order until the queue is empty, the write budget is spent, or the slice is up. */
  private runSlice(): void {
    const deadline = performance.now() + SLICE_MS;
    while (this.running && this.inFlight < this.maxInFlight) {
      const key = this.queue.pop();
      if (key === undefined) return;
      this.scheduleOne(key);
      if (performance.now() >= deadline) {
        this.pump();
        return;
      }
    }
  }

  private scheduleOne(key: string): void {
    const pod = this.pods.getByKey(key);
    if (pod === undefined || !this.isPendingForUs(pod)) {
      this.queue.done(key);
      return;
    }
    this.metrics.attempts++;
    const info = newPodInfo(pod);
    const result = schedulePod(this.framework, info, this.cache.schedulableNodes(), this.state);
    switch (result.kind) {
      case 'Scheduled':
        this.cache.assume(info, result.node.name);
        this.bind(info, result.node.name);
        return;
      case 'Unschedulable':
        this.metrics.unschedulable++;
        this.queue.unschedulable(key);
        this.reportUnschedulable(pod, result.message);
        return;
      case 'Error':
        this.logger.warn({ pod: key, err: result.message }, 'scheduling attempt failed; retrying with backoff');
        this.queue.backoff(key);
        return;
    }
  }

  private bind(info: PodInfo, nodeName: string): void {
    this.write(async () => {
      let status: Status;
      try {
        status = await this.framework.bind(info.pod, nodeName);
      } catch (err) {
        status = { code: 'Error' as const, reasons: [(err as Error).message] };
      }
      if (status.code === 'Success') {
        // Stays assumed until the informer shows it bound; then the cache confirms it.
        this.metrics.bound++;
        this.queue.done(info.key);
        return;
      }
      this.metrics.bindFailures++;
      this.cache.forget(info.uid);
      // What the assumption held is free again: parked pods may fit (as kube-scheduler does).
      this.queue.moveAllToActiveOrBackoff();
      if (status.code === 'UnschedulableAndUnresolvable') {
        // Already bound elsewhere, being deleted or gone: nothing to retry. The pod is looked
        // at once more after its backoff, against the informer, in case it is still pending.
        this.logger.info({ pod: info.key, node: nodeName, reason: status.reasons.join(', ') }, 'pod could not be bound; not retrying');
      } else {
        this.logger.warn({ pod: info.key, node: nodeName, err: status.reasons.join(', ') }, 'binding failed; retrying with backoff');
      }
      this.queue.backoff(info.key);
    });
  }

  /**
   * Writes PodScheduled=False with kube-scheduler's message, only when it differs from what
   * the pod already says, so a pod that stays unschedulable is not rewritten on every attempt.
   * The write is pinned to the cached resourceVersion: if the pod moved meanwhile (it may
   * even have been bound), nothing is overwritten and the pod is looked at again after backoff.
   */
  private reportUnschedulable(pod: Pod, message: string): void {
    const current = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    if (current?.status === 'False' && current.reason === 'Unschedulable' && current.message === message) return;
    const key = podKey(pod);
    const condition: PodCondition = {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message,
      lastTransitionTime: current?.status === 'False' && current.lastTransitionTime !== undefined ? current.lastTransitionTime : timestamp(this.now()),
    };
    const next = structuredClone(pod);
    next.status = { ...next.status, conditions: [...(next.status?.conditions ?? []).filter((c) => c.type !== 'PodScheduled'), condition] };
    this.logger.info({ pod: key, message }, 'pod is unschedulable');
    this.write(async () => {
      try {
        await this.client.update<Pod>('pods', next, 'status');
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) return;
        if (!(err instanceof ApiError && err.code === 409)) this.logger.warn({ pod: key, err: (err as Error).message }, 'could not record why the pod is unschedulable; retrying');
        this.queue.requeue(key);
      }
    });
  }

  /** Runs one API write within the in-flight budget; a finished write lets the loop go on. */
  private write(op: () => Promise<void>): void {
    this.inFlight++;
    void op().finally(() => {
      this.inFlight--;
      if (this.inFlight === 0) {
        const waiters = this.settledWaiters;
        this.settledWaiters = [];
        for (const w of waiters) w();
      }
      this.pump();
    });
  }
}

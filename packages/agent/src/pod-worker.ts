// One pod on this node, driven to its desired state: its containers started (and restarted by
// its restartPolicy, with crash-loop backoff), probed, stopped within the grace period when the
// pod is deleted, and its status reported. All work on a pod runs through sync(), one at a
// time; anything that changes (the pod object, a container exiting, a probe flipping, a
// backoff expiring) asks for another sync.
import { ApiError, parseQuantity, type ApiClient, type Container, type ContainerState, type Pod, type PortMapping, type Service } from '@flotilla/api';
import type { Logger } from '@flotilla/wire';
import { containerEnv, expand } from './env.ts';
import { podStatus, type ContainerView } from './pod-status.ts';
import type { PortAllocator } from './ports.ts';
import { ProbeWorker } from './probes.ts';
import { RuntimeError, type ContainerInfo, type ContainerRuntime } from './runtime/types.ts';
import { timestamp } from '@flotilla/api';

export interface Backoff {
  /** The first restart waits this long (default 1000). */
  readonly initialMs: number;
  /** Doubling stops here (default 30000). */
  readonly maxMs: number;
  /** A container that ran this long before exiting starts again from initialMs (default 60000). */
  readonly resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

export interface KubeletDeps {
  readonly nodeName: string;
  readonly address: string;
  readonly api: ApiClient;
  readonly runtime: ContainerRuntime;
  readonly ports: PortAllocator;
  readonly logger: Logger;
  /** The Services of a namespace (for <NAME>_SERVICE_HOST / _PORT). */
  readonly services: (namespace: string) => readonly Service[];
  readonly backoff: Backoff;
  /** Records an Event about the pod (best effort). */
  readonly event: (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** The agent's own environment, for PATH and HOME. */
  readonly baseEnv: Readonly<Record<string, string>>;
}

interface ContainerRecord {
  spec: Container;
  /** The runtime id of the latest run. */
  current: string | undefined;
  restartCount: number;
  /** The delay before the latest restart (0: none yet). */
  backoffMs: number;
  /** Earliest time the container may start again. */
  notBefore: number;
  /** Why it is not running (CrashLoopBackOff, ImageNotRunnable, …). */
  waiting: { reason: string; message?: string } | undefined;
  /** The run before the current one ended so. */
  lastTerminated: ContainerState['terminated'] | undefined;
  started: boolean;
  ready: boolean;
  probes: ProbeWorker[];
  /** The run that probes and readiness belong to. */
  probedRun: string | undefined;
}

function rv(pod: Pod): number {
  return Number(pod.metadata.resourceVersion ?? 0);
}

export class PodWorker {
  readonly uid: string;
  private pod: Pod;
  private readonly containers = new Map<string, ContainerRecord>();
  private ports: PortMapping[] | undefined;
  /** The pod object is gone from the API (deleted, or force-deleted). */
  private gone = false;
  private syncing = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  /** The sync under way, if any. */
  private current: Promise<void> | undefined;
  private lastStatus = '';
  private readonly startTime = timestamp();
  /** When this agent first saw the pod being deleted. */
  private deletionSeenAt: number | undefined;
  private closed = false;

  constructor(
    pod: Pod,
    private readonly deps: KubeletDeps,
    /** Called once the pod is finished here (stopped, and deleted from the API). */
    private readonly done: (uid: string) => void,
  ) {
    this.pod = pod;
    this.uid = pod.metadata.uid ?? '';
    for (const c of pod.spec.containers) this.containers.set(c.name, this.adopt(c));
  }

  /** A newer version of the pod object. */
  update(pod: Pod): void {
    if (rv(pod) >= rv(this.pod)) this.pod = pod;
    this.kick();
  }

  /** The pod was deleted from the API. */
  deleted(): void {
    this.gone = true;
    this.kick();
  }

  /** One of this pod's containers exited. */
  exited(info: ContainerInfo): void {
    const rec = this.containers.get(info.containerName);
    if (rec === undefined || rec.current !== info.id) return;
    this.stopProbes(rec);
    const ran = (info.finishedAt?.getTime() ?? Date.now()) - (info.startedAt?.getTime() ?? Date.now());
    const delay = ran >= this.deps.backoff.resetAfterMs || rec.backoffMs === 0 ? this.deps.backoff.initialMs : Math.min(this.deps.backoff.maxMs, rec.backoffMs * 2);
    rec.backoffMs = delay;
    rec.notBefore = Date.now() + delay;
    this.kick();
  }

  /** Stops every container now (the agent is shutting down); the pod object is left alone. */
  async shutdown(capMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    // A sync under way may be about to start a container: let it finish (it checks `closed`
    // before starting anything), then stop whatever runs.
    await this.current;
    await this.stopAll(Math.min(capMs, this.graceMs()));
  }

  kick(delayMs = 0): void {
    if (this.closed) return;
    if (delayMs > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.kick(), delayMs);
      return;
    }
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = true;
    this.current = this.sync()
      .catch((err: unknown) => {
        this.deps.logger.warn({ pod: this.key, err: (err as Error).message }, 'pod sync failed; trying again');
        this.kick(1000);
      })
      .finally(() => {
        this.syncing = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private get key(): string {
    return `${this.pod.metadata.namespace}/${this.pod.metadata.name}`;
  }

  /** A record for a container, taking over the latest run the runtime already has (after an agent restart). */
  private adopt(spec: Container): ContainerRecord {
    const runs = this.runs(spec.name);
    const latest = runs[runs.length - 1];
    const reported = this.pod.status?.containerStatuses?.find((s) => s.name === spec.name);
    const rec: ContainerRecord = { spec, current: latest?.id, restartCount: reported?.restartCount ?? latest?.attempt ?? 0, backoffMs: 0, notBefore: 0, waiting: undefined, lastTerminated: reported?.lastState?.terminated, started: false, ready: false, probes: [], probedRun: undefined };
    return rec;
  }

  /** The runtime's containers of this pod (of one of its containers), oldest first. */
  private runs(containerName?: string): ContainerInfo[] {
    return this.deps.runtime.list().filter((c) => c.podUid === this.uid && (containerName === undefined || c.containerName === containerName));
  }

  private graceMs(): number {
    const seconds = this.pod.metadata.deletionGracePeriodSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
    return Math.max(0, seconds * 1000);
  }

  private async sync(): Promise<void> {
    if (this.closed) return;
    if (this.gone || this.pod.metadata.deletionTimestamp !== undefined) return this.terminate();
    const phase = this.pod.status?.phase;
    if ((phase === 'Succeeded' || phase === 'Failed') && this.lastStatus === '') return; // finished before we saw it
    // Ports first: the containers are told theirs (PORT …); the status that reports them is
    // written once the containers have started (one write per pod start, not two).
    this.ports ??= await this.deps.ports.assign(this.pod);
    const now = Date.now();
    let wakeAt = Infinity;
    for (const rec of this.containers.values()) {
      const info = rec.current === undefined ? undefined : this.deps.runtime.get(rec.current);
      if (info?.state === 'running') {
        this.ensureProbes(rec, info);
        continue;
      }
      if (info !== undefined && info.state === 'exited' && !this.shouldRestart(info)) continue;
      if (info !== undefined && info.state === 'created') continue;
      if (now < rec.notBefore) {
        if (rec.waiting === undefined) {
          rec.waiting = { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(rec.backoffMs / 1000)}s restarting failed container=${rec.spec.name} pod=${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.uid})` };
          this.deps.event(this.pod, 'Warning', 'BackOff', `Back-off restarting failed container ${rec.spec.name} in pod ${this.pod.metadata.name}`);
        }
        wakeAt = Math.min(wakeAt, rec.notBefore);
        continue;
      }
      await this.start(rec, info);
      // A start that failed is tried again when its backoff ends.
      if (rec.waiting !== undefined) wakeAt = Math.min(wakeAt, rec.notBefore);
    }
    await this.publish();
    if (wakeAt !== Infinity) this.kick(Math.max(10, wakeAt - Date.now()));
  }

  private shouldRestart(info: ContainerInfo): boolean {
    switch (this.pod.spec.restartPolicy ?? 'Always') {
      case 'Always':
        return true;
      case 'OnFailure':
        return info.exitCode !== 0;
      case 'Never':
        return false;
    }
  }

  /** Starts a new run of a container (the first, or a restart after `previous`). */
  private async start(rec: ContainerRecord, previous: ContainerInfo | undefined): Promise<void> {
    const spec = rec.spec;
    if (this.closed) return;
    const attempt = Math.max(-1, ...this.runs(spec.name).map((c) => c.attempt)) + 1;
    const env = this.envFor(spec);
    const limits = spec.resources?.limits;
    try {
      const created = await this.deps.runtime.create({
        podUid: this.uid,
        podNamespace: this.pod.metadata.namespace ?? '',
        podName: this.pod.metadata.name ?? '',
        containerName: spec.name,
        attempt,
        ...(spec.image === undefined ? {} : { image: spec.image }),
        ...(spec.command === undefined ? {} : { command: spec.command.map((s) => expand(s, env)) }),
        ...(spec.args === undefined ? {} : { args: spec.args.map((s) => expand(s, env)) }),
        env,
        ...(spec.workingDir === undefined ? {} : { workingDir: spec.workingDir }),
        ...(limits === undefined ? {} : { limits: { ...(limits['cpu'] === undefined ? {} : { cpuMillis: Math.round(parseQuantity(limits['cpu']) * 1000) }), ...(limits['memory'] === undefined ? {} : { memoryBytes: Math.round(parseQuantity(limits['memory'])) }) } }),
      });
      if (previous !== undefined) {
        rec.lastTerminated = terminated(previous);
        rec.restartCount++;
      }
      rec.current = created.id;
      rec.started = false;
      rec.ready = false;
      if (this.closed) return; // the agent is stopping: the created container never runs
      const info = await this.deps.runtime.start(created.id);
      rec.waiting = undefined;
      // Runs before the previous one are of no more use (its log is `previous`): forget them.
      for (const old of this.runs(spec.name)) {
        if (old.attempt < attempt - 1 && old.state === 'exited') await this.deps.runtime.remove(old.id);
      }
      this.deps.event(this.pod, 'Normal', 'Started', `Started container ${spec.name}`);
      if (info.state === 'running') this.ensureProbes(rec, info);
    } catch (err) {
      if (!(err instanceof RuntimeError)) throw err;
      rec.waiting = { reason: err.reason, message: err.message };
      rec.backoffMs = rec.backoffMs === 0 ? this.deps.backoff.initialMs : Math.min(this.deps.backoff.maxMs, rec.backoffMs * 2);
      rec.notBefore = Date.now() + rec.backoffMs;
      this.deps.event(this.pod, 'Warning', 'Failed', `Error: ${err.message}`);
    }
  }

  /** A container's environment (the pod seen with this node's address as its IPs). */
  private envFor(spec: Container): Record<string, string> {
    const pod: Pod = { ...this.pod, status: { ...this.pod.status, hostIP: this.deps.address, podIP: this.deps.address } };
    return containerEnv({ pod, container: spec, address: this.deps.address, ports: this.ports ?? [], services: this.deps.services(this.pod.metadata.namespace ?? ''), base: this.deps.baseEnv });
  }

  /** Probes for the current run (new ones when the run changed). */
  private ensureProbes(rec: ContainerRecord, info: ContainerInfo): void {
    if (rec.probedRun === info.id) return;
    this.stopProbes(rec);
    rec.probedRun = info.id;
    const spec = rec.spec;
    // Exec probes run as the container would: with its environment and working directory.
    const target = { host: this.deps.address, resolvePort: (p: number | string) => this.resolvePort(p), env: this.envFor(spec), ...(spec.workingDir === undefined ? {} : { cwd: spec.workingDir }) };
    const startMain = (): void => {
      rec.started = true;
      if (spec.livenessProbe !== undefined) {
        const live = new ProbeWorker('liveness', spec.livenessProbe, target, (healthy, result) => {
          if (healthy || rec.current !== info.id) return;
          this.deps.event(this.pod, 'Warning', 'Unhealthy', `Liveness probe failed: ${result.message}`);
          this.deps.event(this.pod, 'Normal', 'Killing', `Container ${spec.name} failed liveness probe, will be restarted`);
          void this.deps.runtime.stop(info.id, this.graceMs()).catch(() => undefined);
        });
        rec.probes.push(live);
        live.start();
      }
      if (spec.readinessProbe !== undefined) {
        const ready = new ProbeWorker('readiness', spec.readinessProbe, target, (healthy, result) => {
          if (rec.current !== info.id) return;
          if (!healthy) this.deps.event(this.pod, 'Warning', 'Unhealthy', `Readiness probe failed: ${result.message}`);
          rec.ready = healthy;
          this.kick();
        });
        rec.probes.push(ready);
        ready.start();
      } else rec.ready = true;
    };
    if (spec.startupProbe !== undefined) {
      const startup = new ProbeWorker('startup', spec.startupProbe, target, (healthy, result) => {
        if (rec.current !== info.id) return;
        if (!healthy) {
          this.deps.event(this.pod, 'Warning', 'Unhealthy', `Startup probe failed: ${result.message}`);
          void this.deps.runtime.stop(info.id, this.graceMs()).catch(() => undefined);
          return;
        }
        startup.stop();
        startMain();
        this.kick();
      });
      rec.probes.push(startup);
      startup.start();
    } else startMain();
  }

  private stopProbes(rec: ContainerRecord): void {
    for (const p of rec.probes) p.stop();
    rec.probes = [];
    rec.probedRun = undefined;
    rec.ready = false;
    rec.started = false;
  }

  /** A probe's port: a container port (number or name) → where the container listens. */
  private resolvePort(port: number | string): number | undefined {
    const ports = this.ports ?? [];
    if (typeof port === 'number') return ports.find((m) => m.containerPort === port)?.hostPort ?? port;
    if (/^\d+$/.test(port)) return this.resolvePort(Number(port));
    return ports.find((m) => m.name === port)?.hostPort;
  }

  private view(rec: ContainerRecord): ContainerView {
    const info = rec.current === undefined ? undefined : this.deps.runtime.get(rec.current);
    let state: ContainerState;
    let lastState = rec.lastTerminated === undefined ? undefined : { terminated: rec.lastTerminated };
    if (info?.state === 'running') state = { running: { startedAt: timestamp(info.startedAt?.getTime()) } };
    else if (info?.state === 'exited' && rec.waiting !== undefined) {
      // Waiting to run again (CrashLoopBackOff), or a start that failed (RunContainerError …).
      state = { waiting: rec.waiting };
      lastState = { terminated: terminated(info) };
    } else if (info?.state === 'exited') state = { terminated: terminated(info) };
    else state = { waiting: rec.waiting ?? { reason: 'ContainerCreating' } };
    return { name: rec.spec.name, image: rec.spec.image, id: info?.id, state, lastState, restartCount: rec.restartCount, ready: info?.state === 'running' && rec.ready, started: info?.state === 'running' && rec.started };
  }

  /** Writes the pod's status if it changed (PUT /status with the pod's resourceVersion). */
  private async publish(): Promise<void> {
    const status = podStatus({ pod: this.pod, address: this.deps.address, containers: [...this.containers.values()].map((r) => this.view(r)), ports: this.ports, startTime: this.startTime });
    const text = JSON.stringify(status);
    if (text === this.lastStatus) return;
    for (let tries = 0; ; tries++) {
      try {
        const written = await this.deps.api.update<Pod>('pods', { ...this.pod, status }, 'status');
        if (rv(written) >= rv(this.pod)) this.pod = written;
        this.lastStatus = text;
        return;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.reason === 'NotFound') {
          this.gone = true;
          this.kick();
          return;
        }
        if (err.reason !== 'Conflict' || tries >= 5) throw err;
        const fresh = await this.deps.api.get<Pod>('pods', this.pod.metadata.namespace, this.pod.metadata.name ?? '');
        if (fresh.metadata.uid !== this.uid) {
          this.gone = true;
          this.kick();
          return;
        }
        this.pod = fresh;
        if (fresh.metadata.deletionTimestamp !== undefined) return;
      }
    }
  }

  private async stopAll(graceMs: number): Promise<void> {
    const runs = this.runs().filter((c) => c.state !== 'exited');
    for (const rec of this.containers.values()) this.stopProbes(rec);
    await Promise.all(runs.map((c) => this.deps.runtime.stop(c.id, graceMs).catch(() => undefined)));
  }

  /** Deletion: stop every container within the grace period, then remove the pod object. */
  private async terminate(): Promise<void> {
    const live = this.runs().some((c) => c.state !== 'exited');
    if (live) {
      // The grace period counts from when this agent saw the deletion (the master's
      // deletionTimestamp is on another clock).
      this.deletionSeenAt ??= Date.now();
      const grace = Math.max(0, this.deletionSeenAt + this.graceMs() - Date.now());
      this.deps.event(this.pod, 'Normal', 'Killing', `Stopping pod ${this.pod.metadata.name}`);
      await this.stopAll(grace);
    }
    if (!this.gone) {
      try {
        await this.deps.api.delete('pods', this.pod.metadata.namespace, this.pod.metadata.name ?? '', { gracePeriodSeconds: 0, preconditions: { uid: this.uid } });
      } catch (err) {
        if (!(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict'))) throw err;
      }
      this.gone = true;
    }
    for (const c of this.runs()) await this.deps.runtime.remove(c.id).catch(() => undefined);
    this.deps.ports.release(this.uid);
    this.closed = true;
    clearTimeout(this.timer);
    this.done(this.uid);
  }
}

function terminated(info: ContainerInfo): NonNullable<ContainerState['terminated']> {
  const t: NonNullable<ContainerState['terminated']> = { exitCode: info.exitCode ?? 137, reason: info.reason ?? (info.exitCode === 0 ? 'Completed' : 'Error') };
  if (info.signal !== undefined) t.message = `killed by ${info.signal}`;
  if (info.startedAt !== undefined) t.startedAt = timestamp(info.startedAt.getTime());
  if (info.finishedAt !== undefined) t.finishedAt = timestamp(info.finishedAt.getTime());
  return t;
}

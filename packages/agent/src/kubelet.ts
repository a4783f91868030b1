// The kubelet part of the agent: one PodWorker per pod bound to this node (by uid), fed by a
// watch of those pods; containers the runtime has that belong to no such pod (left by pods
// deleted while the agent was away) are stopped and removed once the first list is in.
import { randomBytes } from 'node:crypto';
import { timestamp, type Event, type Pod } from '@flotilla/api';
import { PodWorker, type KubeletDeps } from './pod-worker.ts';
import type { ContainerInfo } from './runtime/types.ts';

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  /** Pods whose work here is over (finished or deleted), so that late events do not revive them. */
  private readonly finished = new Set<string>();
  /** Last time an event with this key was sent (pod uid + reason), to keep event volume sane. */
  private readonly recentEvents = new Map<string, number>();
  private readonly deps: KubeletDeps;

  constructor(deps: Omit<KubeletDeps, 'event'>) {
    this.deps = { ...deps, event: (pod, type, reason, message) => this.event(pod, type, reason, message) };
    deps.runtime.onExit((info) => this.exited(info));
  }

  podChanged(pod: Pod): void {
    const uid = pod.metadata.uid;
    if (uid === undefined || pod.spec.nodeName !== this.deps.nodeName || this.finished.has(uid)) return;
    let w = this.workers.get(uid);
    if (w === undefined) {
      w = new PodWorker(pod, this.deps, (done) => {
        this.workers.delete(done);
        this.finished.add(done);
      });
      this.workers.set(uid, w);
    }
    w.update(pod);
  }

  /** A new version of a pod object (`old` is the cached one, if any). */
  podUpdated(old: Pod | undefined, pod: Pod): void {
    // Same name, other uid: the pod was deleted and created again while the watch was down
    // (a relist reports that as an update). The old one is gone.
    if (old !== undefined && old.metadata.uid !== pod.metadata.uid) this.podDeleted(old);
    this.podChanged(pod);
  }

  podDeleted(pod: Pod): void {
    const uid = pod.metadata.uid ?? '';
    const w = this.workers.get(uid);
    if (w !== undefined) w.deleted();
    // No event comes for this uid any more: it need not be remembered.
    else this.finished.delete(uid);
  }

  /**
   * The kubelet's periodic resync: any pod worked on here that is no longer among the pods
   * bound to this node (a deletion the watch did not report) is treated as deleted.
   */
  resync(pods: readonly Pod[]): void {
    const present = new Set(pods.map((p) => p.metadata.uid));
    for (const [uid, w] of this.workers) if (!present.has(uid)) w.deleted();
  }

  /**
   * After the first list of this node's pods: containers of pods that no longer exist are
   * stopped and removed (pods deleted while the agent was away, or force-deleted).
   */
  async cleanOrphans(pods: readonly Pod[], graceMs = 2000): Promise<number> {
    const known = new Set(pods.map((p) => p.metadata.uid));
    const orphans = this.deps.runtime.list().filter((c) => !known.has(c.podUid) && !this.workers.has(c.podUid));
    await Promise.all(
      orphans.map(async (c) => {
        this.deps.logger.info({ container: c.id, pod: `${c.podNamespace}/${c.podName}` }, 'removing a container of a pod that no longer runs here');
        try {
          if (c.state !== 'exited') await this.deps.runtime.stop(c.id, graceMs);
          await this.deps.runtime.remove(c.id);
        } catch (err) {
          this.deps.logger.warn({ container: c.id, err: (err as Error).message }, 'could not remove an orphaned container');
        }
      }),
    );
    return orphans.length;
  }

  /** Stops every pod's containers (the agent is stopping); pod objects are left as they are. */
  async shutdown(capMs = 10_000): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.shutdown(capMs)));
  }

  private exited(info: ContainerInfo): void {
    this.workers.get(info.podUid)?.exited(info);
  }

  private event(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${pod.metadata.uid}/${reason}/${message}`;
    const now = Date.now();
    if ((this.recentEvents.get(key) ?? 0) > now - 10_000) return;
    this.recentEvents.set(key, now);
    if (this.recentEvents.size > 10_000) for (const [k, t] of this.recentEvents) if (t < now - 10_000) this.recentEvents.delete(k);
    const at = timestamp(now);
    const event: Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${pod.metadata.name}.${randomBytes(6).toString('hex')}`, namespace: pod.metadata.namespace ?? 'default' },
      involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: pod.metadata.namespace ?? '', name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '' },
      reason,
      message,
      type,
      source: { component: 'kubelet', host: this.deps.nodeName },
      count: 1,
      firstTimestamp: at,
      lastTimestamp: at,
    };
    // Events are best effort, as the kubelet's: one that cannot be written is dropped.
    this.deps.api.create('events', event).catch(() => undefined);
  }
}

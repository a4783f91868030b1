// Fake worker nodes for system tests and benchmarks, before agents exist: each is a Node and
// a Lease written through the API, a lease renewal every second, and a stand-in kubelet that
// marks pods bound to its nodes Running and Ready (with a pod IP) and finishes their deletion.
// Stopping a node stops both, as if its machine had been unplugged.
import type { HttpApi } from './http-api.ts';

export interface FakeNodeSpec {
  readonly cpu?: string;
  readonly memory?: string;
  readonly pods?: string;
  readonly labels?: Record<string, string>;
  readonly taints?: { key: string; value?: string; effect: string }[];
}

export function nodeObject(name: string, spec: FakeNodeSpec = {}): object {
  const resources = { cpu: spec.cpu ?? '4', memory: spec.memory ?? '8Gi', pods: spec.pods ?? '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...spec.labels } },
    spec: { ...(spec.taints === undefined ? {} : { taints: spec.taints }) },
    status: {
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'fake node', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    },
  };
}

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';

export class FakeNodes {
  private readonly alive = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private nextIp = 1;
  private readonly ips = new Map<string, string>();
  /** Pods this kubelet marked ready (uid), so each is written once. */
  private readonly started = new Set<string>();

  constructor(private readonly api: HttpApi) {}

  async register(name: string, spec: FakeNodeSpec = {}): Promise<void> {
    await this.api.ok('POST', '/api/v1/nodes', nodeObject(name, spec), [201]);
    await this.api.ok('POST', LEASES, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-node-lease' }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new Date().toISOString() } }, [201]);
    this.alive.add(name);
  }

  /** Starts renewing leases (every `renewMs`) and acting as the kubelet (every `kubeletMs`). */
  start(renewMs = 1000, kubeletMs = 200): void {
    this.timers.push(setInterval(() => void this.renew().catch(() => undefined), renewMs));
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        await this.kubelet().catch(() => undefined);
        await new Promise((r) => setTimeout(r, kubeletMs));
      }
    };
    void loop();
  }

  /** The node stops renewing its lease and its kubelet stops acting. */
  unplug(name: string): void {
    this.alive.delete(name);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private async renew(): Promise<void> {
    const now = new Date().toISOString();
    await Promise.all([...this.alive].map((n) => this.api.call('PATCH', `${LEASES}/${n}`, { spec: { renewTime: now } }, 'application/merge-patch+json')));
  }

  private async kubelet(): Promise<void> {
    const list = await this.api.ok('GET', '/api/v1/pods');
    const work: Promise<unknown>[] = [];
    for (const pod of list.items as any[]) {
      const node = pod.spec?.nodeName as string | undefined;
      if (node === undefined || !this.alive.has(node)) continue;
      const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;
      if (pod.metadata.deletionTimestamp !== undefined) {
        work.push(this.api.call('DELETE', path, { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } }));
        continue;
      }
      if (pod.status?.phase === 'Running' || this.started.has(pod.metadata.uid)) continue;
      const ip = this.ips.get(pod.metadata.uid) ?? `10.0.${Math.floor(this.nextIp / 250)}.${(this.nextIp++ % 250) + 1}`;
      this.ips.set(pod.metadata.uid, ip);
      const now = new Date().toISOString();
      const status = {
        ...pod,
        status: {
          ...pod.status,
          phase: 'Running',
          podIP: ip,
          startTime: now,
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            { type: 'Initialized', status: 'True', lastTransitionTime: now },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
            { type: 'Ready', status: 'True', lastTransitionTime: now },
          ],
        },
      };
      work.push(
        this.api.call('PUT', `${path}/status`, status).then((a) => {
          if (a.status === 200) this.started.add(pod.metadata.uid);
        }),
      );
    }
    await Promise.all(work);
  }
}

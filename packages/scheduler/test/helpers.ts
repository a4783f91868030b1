// Builders for Pods, Nodes and NodeInfos, a poll-until helper, and an ApiClient wrapper that
// lets a test step into binds (to fake a rival scheduler or a failed write).
import type { ApiClient, DeleteCallOptions, KubeObject, ClientListOptions, ListResult, Node, Pod, Taint, Toleration, WatchCallbacks } from '@flotilla/api';
import { NodeInfo } from '../src/framework/node-info.ts';
import { newPodInfo, type PodInfo } from '../src/framework/pod-info.ts';

export interface PodOptions {
  cpu?: string;
  memory?: string;
  owner?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  affinity?: Pod['spec']['affinity'];
  nodeName?: string;
  finalizers?: string[];
  schedulerName?: string;
}

let uidCounter = 0;

export function pod(name: string, o: PodOptions = {}): Pod {
  const requests: Record<string, string> = {};
  if (o.cpu !== undefined) requests['cpu'] = o.cpu;
  if (o.memory !== undefined) requests['memory'] = o.memory;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}-${++uidCounter}`,
      ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.owner, uid: `owner-${o.owner}`, controller: true }] }),
      ...(o.finalizers === undefined ? {} : { finalizers: o.finalizers }),
    },
    spec: {
      containers: [{ name: 'c', image: 'process', command: ['sleep', '1'], ...(Object.keys(requests).length === 0 ? {} : { resources: { requests } }) }],
      ...(o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector }),
      ...(o.tolerations === undefined ? {} : { tolerations: o.tolerations }),
      ...(o.affinity === undefined ? {} : { affinity: o.affinity }),
      ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName }),
      ...(o.schedulerName === undefined ? {} : { schedulerName: o.schedulerName }),
    },
  };
}

export interface NodeOptions {
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: Taint[];
  ready?: boolean;
  unschedulable?: boolean;
}

export function node(name: string, o: NodeOptions = {}): Node {
  const allocatable = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', ...(o.pods === undefined ? {} : { pods: o.pods }) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.taints === undefined ? {} : { taints: o.taints }), ...(o.unschedulable === undefined ? {} : { unschedulable: o.unschedulable }) },
    status: {
      capacity: allocatable,
      allocatable,
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', reason: 'KubeletReady' }],
    },
  };
}

/** A NodeInfo holding `pods` (for plugin tests: no API involved). */
export function nodeInfo(n: Node, pods: Pod[] = []): NodeInfo {
  const ni = new NodeInfo(n.metadata.name!, n);
  for (const p of pods) ni.addPod(newPodInfo(p));
  return ni;
}

export function info(p: Pod): PodInfo {
  return newPodInfo(p);
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An ApiClient that passes everything to `inner`, except binds, which go through `onBind` when set. */
export class SteppingClient implements ApiClient {
  onBind: ((namespace: string, name: string, nodeName: string, uid: string | undefined, inner: ApiClient) => Promise<void>) | undefined;
  readonly binds: string[] = [];

  constructor(private readonly inner: ApiClient) {}

  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): Promise<T> {
    return this.inner.get<T>(resource, namespace, name);
  }
  list<T extends KubeObject>(resource: string, namespace?: string, options?: ClientListOptions): Promise<ListResult<T>> {
    return this.inner.list<T>(resource, namespace, options);
  }
  create<T extends KubeObject>(resource: string, obj: T): Promise<T> {
    return this.inner.create(resource, obj);
  }
  update<T extends KubeObject>(resource: string, obj: T, subresource?: 'status'): Promise<T> {
    return this.inner.update(resource, obj, subresource);
  }
  patch<T extends KubeObject>(resource: string, namespace: string | undefined, name: string, patch: unknown, type?: 'merge' | 'strategic' | 'json', subresource?: 'status' | 'scale'): Promise<T> {
    return this.inner.patch<T>(resource, namespace, name, patch, type, subresource);
  }
  delete(resource: string, namespace: string | undefined, name: string, options?: DeleteCallOptions): Promise<void> {
    return this.inner.delete(resource, namespace, name, options);
  }
  bind(namespace: string, name: string, nodeName: string, uid?: string): Promise<void> {
    this.binds.push(name);
    return this.onBind === undefined ? this.inner.bind(namespace, name, nodeName, uid) : this.onBind(namespace, name, nodeName, uid, this.inner);
  }
  watch<T extends KubeObject>(resource: string, namespace: string | undefined, resourceVersion: string, callbacks: WatchCallbacks<T>, options?: ClientListOptions): Promise<() => void> {
    return this.inner.watch(resource, namespace, resourceVersion, callbacks, options);
  }
}

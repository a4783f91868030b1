// What the campaign's requests are about: namespaces, names, kinds, credentials. The store
// model covers the kinds no controller writes (services, leases) in the model namespaces;
// everything else goes to scratch namespaces.
export const MODEL_NS = ['fz-m0', 'fz-m1'] as const;
export const SCRATCH_NS = ['fz-s0', 'fz-s1'] as const;
/** Namespaces the fuzzer may delete (the campaign puts them back). */
export const DELETABLE_NS = ['fz-s0', 'fz-s1', 'fz-x0', 'fz-x1'] as const;
/** Pods bound to a node with no agent (the log forwarder asks the other masters). */
export const LOG_NS = 'fz-log';
/** A dozen ~1.4 MB events: a list of them is larger than an agent frame. */
export const BIG_NS = 'fz-big';
export const CANARY_NS = 'fz-canary';
/** The node the fuzzer's agent socket joins as. */
export const NODE_NAME = 'fz-node';
/** A node name no agent has: pods bound to it have their logs forwarded. */
export const GHOST_NODE = 'ghost-node';
export const GHOST_POD = 'ghost';
/** A pod bound to the fuzzer's node: the master asks the fuzzer's agent socket for its log. */
export const AGENT_POD = 'agentpod';
/** Objects in the model namespaces that requests patch and replace but never delete. */
export const KEEP = 'keep-0';
export const MODEL_NAMES = ['m-0', 'm-1', 'm-2', 'm-3', KEEP] as const;
export const SCRATCH_NAMES = ['s-0', 's-1', 's-2', KEEP] as const;
export const CANARY_TOKEN = 'fuzz-canary-token-0123456789';
export const GARBAGE_TOKEN = 'garbage-token-not-valid-0123';

export type Cred = 'admin' | 'viewer' | 'node' | 'none' | 'garbage' | 'basic';

export interface Kind {
  readonly resource: string;
  /** /api/v1 or /apis/GROUP/VERSION */
  readonly prefix: string;
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespaced: boolean;
  readonly subresources: readonly string[];
  /** Objects of this kind in MODEL_NS are compared with the store model. */
  readonly model?: boolean;
}

export const KINDS: readonly Kind[] = [
  { resource: 'pods', prefix: '/api/v1', kind: 'Pod', apiVersion: 'v1', namespaced: true, subresources: ['status', 'binding', 'log'] },
  { resource: 'services', prefix: '/api/v1', kind: 'Service', apiVersion: 'v1', namespaced: true, subresources: ['status'], model: true },
  { resource: 'endpoints', prefix: '/api/v1', kind: 'Endpoints', apiVersion: 'v1', namespaced: true, subresources: [] },
  { resource: 'events', prefix: '/api/v1', kind: 'Event', apiVersion: 'v1', namespaced: true, subresources: [] },
  { resource: 'replicasets', prefix: '/apis/apps/v1', kind: 'ReplicaSet', apiVersion: 'apps/v1', namespaced: true, subresources: ['status', 'scale'] },
  { resource: 'deployments', prefix: '/apis/apps/v1', kind: 'Deployment', apiVersion: 'apps/v1', namespaced: true, subresources: ['status', 'scale'] },
  { resource: 'leases', prefix: '/apis/coordination.k8s.io/v1', kind: 'Lease', apiVersion: 'coordination.k8s.io/v1', namespaced: true, subresources: [], model: true },
  { resource: 'namespaces', prefix: '/api/v1', kind: 'Namespace', apiVersion: 'v1', namespaced: false, subresources: ['status', 'finalize'] },
  { resource: 'nodes', prefix: '/api/v1', kind: 'Node', apiVersion: 'v1', namespaced: false, subresources: ['status'] },
];

export const MODEL_KINDS = KINDS.filter((k) => k.model === true);

export function kindOf(resource: string): Kind | undefined {
  return KINDS.find((k) => k.resource === resource);
}

/** The path of a collection or object. */
export function pathOf(k: Kind, namespace: string | undefined, name?: string, sub?: string): string {
  const ns = k.namespaced && namespace !== undefined ? `/namespaces/${namespace}` : '';
  return `${k.prefix}${ns}/${k.resource}${name === undefined ? '' : `/${name}`}${sub === undefined ? '' : `/${sub}`}`;
}

/** A plausible object of a kind (what the fuzzer starts from before breaking it). */
export function template(k: Kind, name: string, namespace?: string): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name, ...(namespace === undefined ? {} : { namespace }), labels: { app: 'fz' } };
  const container = { name: 'main', image: 'busybox', command: ['sleep', '3600'] };
  const base = { apiVersion: k.apiVersion, kind: k.kind, metadata };
  switch (k.kind) {
    case 'Pod':
      return { ...base, spec: { containers: [container] } };
    case 'Service':
      return { ...base, spec: { selector: { app: 'fz' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
    case 'Endpoints':
      return { ...base, subsets: [{ addresses: [{ ip: '127.0.0.9' }], ports: [{ port: 80 }] }] };
    case 'Event':
      return { ...base, reason: 'Fuzz', message: 'hello', type: 'Normal', involvedObject: { kind: 'Pod', name: 'p', namespace: namespace ?? 'default' }, count: 1 };
    case 'ReplicaSet':
    case 'Deployment':
      return { ...base, spec: { replicas: 0, selector: { matchLabels: { app: 'fz' } }, template: { metadata: { labels: { app: 'fz' } }, spec: { containers: [container] } } } };
    case 'Lease':
      return { ...base, spec: { holderIdentity: 'fz', leaseDurationSeconds: 10 } };
    case 'Namespace':
      return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
    case 'Node':
      return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {} };
    default:
      return base;
  }
}

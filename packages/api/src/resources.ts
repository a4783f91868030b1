// The kinds the API serves: where each lives in the URL space and in the store, how it is
// listed as a Table, which fields it can be selected by, and how it is named.
import type { Deployment, Lease, ReplicaSet } from './types/apps.ts';
import type { Endpoints, Event, Namespace, Node, Pod, Service } from './types/core.ts';
import type { KubeObject, TableColumnDefinition } from './types/meta.ts';

export type Subresource = 'status' | 'scale' | 'binding' | 'log' | 'finalize';

export interface ResourceInfo {
  /** '' for core. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The plural used in URLs and storage keys. */
  readonly resource: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly subresources: readonly Subresource[];
  /** DNS-1123 subdomain for most kinds; namespaces and services are DNS-1123 labels. */
  readonly nameRule: 'subdomain' | 'label';
  /** Field selectors beyond metadata.name and metadata.namespace. */
  readonly fields: (obj: KubeObject) => Record<string, string>;
  readonly columns: readonly TableColumnDefinition[];
  readonly row: (obj: KubeObject, now: number) => unknown[];
}

export function apiVersionOf(r: ResourceInfo): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

const col = (name: string, type: TableColumnDefinition['type'], description: string, priority = 0, format = ''): TableColumnDefinition => ({ name, type, format, description, priority });
const NAME = col('Name', 'string', 'Name must be unique within a namespace.', 0, 'name');
const AGE = col('Age', 'string', 'Time since the object was created.');

/** "5m", "3h", "2d": how kubectl prints ages. */
export function age(created: string | undefined, now: number): string {
  if (created === undefined) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The STATUS column as kubectl prints it: Terminating, a container's waiting or terminated reason (CrashLoopBackOff, Completed, Error…), or the phase. */
function podStatus(p: Pod): string {
  if (p.metadata.deletionTimestamp !== undefined) return 'Terminating';
  const states = (p.status?.containerStatuses ?? []).map((c) => c.state);
  const waiting = states.find((s) => s?.waiting?.reason !== undefined && s.waiting.reason !== 'ContainerCreating')?.waiting?.reason;
  const terminated = states.find((s) => s?.terminated !== undefined)?.terminated;
  const running = states.some((s) => s?.running !== undefined);
  return waiting ?? (running ? undefined : terminated?.reason) ?? p.status?.reason ?? (states.some((s) => s?.waiting?.reason === 'ContainerCreating') ? 'ContainerCreating' : undefined) ?? p.status?.phase ?? 'Pending';
}

const common = { group: '', version: 'v1', subresources: [] as Subresource[], nameRule: 'subdomain' as const, fields: () => ({}) };

export const RESOURCES: readonly ResourceInfo[] = [
  {
    ...common,
    kind: 'Namespace',
    resource: 'namespaces',
    singular: 'namespace',
    namespaced: false,
    shortNames: ['ns'],
    subresources: ['status', 'finalize'],
    nameRule: 'label',
    fields: (o) => ({ 'status.phase': (o as Namespace).status?.phase ?? 'Active' }),
    columns: [NAME, col('Status', 'string', 'The phase of the namespace.'), AGE],
    row: (o, now) => [o.metadata.name, (o as Namespace).status?.phase ?? 'Active', age(o.metadata.creationTimestamp, now)],
  },
  {
    ...common,
    kind: 'Node',
    resource: 'nodes',
    singular: 'node',
    namespaced: false,
    shortNames: ['no'],
    subresources: ['status'],
    fields: (o) => ({ 'spec.unschedulable': String((o as Node).spec?.unschedulable ?? false) }),
    columns: [NAME, col('Status', 'string', 'Whether the node is ready.'), col('Roles', 'string', 'The roles of the node.'), AGE, col('Version', 'string', 'Agent version.')],
    row: (o, now) => {
      const n = o as Node;
      const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status;
      const status = `${ready === 'True' ? 'Ready' : ready === undefined ? 'Unknown' : 'NotReady'}${n.spec?.unschedulable === true ? ',SchedulingDisabled' : ''}`;
      return [n.metadata.name, status, '<none>', age(n.metadata.creationTimestamp, now), n.status?.nodeInfo?.kubeletVersion ?? ''];
    },
  },
  {
    ...common,
    kind: 'Pod',
    resource: 'pods',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    subresources: ['status', 'binding', 'log'],
    fields: (o) => {
      const p = o as Pod;
      return { 'spec.nodeName': p.spec?.nodeName ?? '', 'status.phase': p.status?.phase ?? '', 'spec.restartPolicy': p.spec?.restartPolicy ?? 'Always' };
    },
    columns: [
      NAME,
      col('Ready', 'string', 'Ready containers out of all.'),
      col('Status', 'string', 'The state of the pod.'),
      col('Restarts', 'string', 'How often containers were restarted.'),
      AGE,
      col('IP', 'string', 'The IP address of the pod.', 1),
      col('Node', 'string', 'The node the pod runs on.', 1),
    ],
    row: (o, now) => {
      const p = o as Pod;
      const statuses = p.status?.containerStatuses ?? [];
      const ready = statuses.filter((c) => c.ready).length;
      const restarts = statuses.reduce((s, c) => s + c.restartCount, 0);
      return [p.metadata.name, `${ready}/${p.spec?.containers?.length ?? 0}`, podStatus(p), String(restarts), age(p.metadata.creationTimestamp, now), p.status?.podIP ?? '<none>', p.spec?.nodeName ?? '<none>'];
    },
  },
  {
    ...common,
    kind: 'Service',
    resource: 'services',
    singular: 'service',
    namespaced: true,
    shortNames: ['svc'],
    subresources: ['status'],
    nameRule: 'label',
    columns: [NAME, col('Type', 'string', 'How the service is exposed.'), col('Cluster-IP', 'string', 'The virtual address.'), col('External-IP', 'string', 'External address.'), col('Port(s)', 'string', 'The service ports.'), AGE],
    row: (o, now) => {
      const s = o as Service;
      const ports = (s.spec?.ports ?? []).map((p) => `${p.port}${p.nodePort === undefined ? '' : `:${p.nodePort}`}/${p.protocol ?? 'TCP'}`).join(',');
      return [s.metadata.name, s.spec?.type ?? 'ClusterIP', s.spec?.clusterIP ?? '<none>', '<none>', ports === '' ? '<none>' : ports, age(s.metadata.creationTimestamp, now)];
    },
  },
  {
    ...common,
    kind: 'Endpoints',
    resource: 'endpoints',
    singular: 'endpoints',
    namespaced: true,
    shortNames: ['ep'],
    columns: [NAME, col('Endpoints', 'string', 'The addresses behind the service.'), AGE],
    row: (o, now) => {
      const e = o as Endpoints;
      const addrs = (e.subsets ?? []).flatMap((s) => (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => `${a.ip}:${p.port}`)));
      return [e.metadata.name, addrs.length === 0 ? '<none>' : addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : ''), age(e.metadata.creationTimestamp, now)];
    },
  },
  {
    ...common,
    kind: 'Event',
    resource: 'events',
    singular: 'event',
    namespaced: true,
    shortNames: ['ev'],
    fields: (o) => {
      const e = o as Event;
      return { 'involvedObject.name': e.involvedObject?.name ?? '', 'involvedObject.kind': e.involvedObject?.kind ?? '', reason: e.reason ?? '', type: e.type ?? '' };
    },
    columns: [col('Last Seen', 'string', 'When it last happened.'), col('Type', 'string', 'Normal or Warning.'), col('Reason', 'string', 'Why it happened.'), col('Object', 'string', 'What it happened to.'), col('Message', 'string', 'What happened.')],
    row: (o, now) => {
      const e = o as Event;
      return [age(e.lastTimestamp ?? e.metadata.creationTimestamp, now), e.type ?? 'Normal', e.reason ?? '', `${(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`, e.message ?? ''];
    },
  },
  {
    ...common,
    group: 'apps',
    kind: 'ReplicaSet',
    resource: 'replicasets',
    singular: 'replicaset',
    namespaced: true,
    shortNames: ['rs'],
    subresources: ['status', 'scale'],
    columns: [NAME, col('Desired', 'integer', 'Wanted replicas.'), col('Current', 'integer', 'Existing replicas.'), col('Ready', 'integer', 'Ready replicas.'), AGE],
    row: (o, now) => {
      const r = o as ReplicaSet;
      return [r.metadata.name, r.spec?.replicas ?? 1, r.status?.replicas ?? 0, r.status?.readyReplicas ?? 0, age(r.metadata.creationTimestamp, now)];
    },
  },
  {
    ...common,
    group: 'apps',
    kind: 'Deployment',
    resource: 'deployments',
    singular: 'deployment',
    namespaced: true,
    shortNames: ['deploy'],
    subresources: ['status', 'scale'],
    columns: [NAME, col('Ready', 'string', 'Ready replicas out of wanted.'), col('Up-to-date', 'integer', 'Replicas of the current template.'), col('Available', 'integer', 'Available replicas.'), AGE],
    row: (o, now) => {
      const d = o as Deployment;
      return [d.metadata.name, `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`, d.status?.updatedReplicas ?? 0, d.status?.availableReplicas ?? 0, age(d.metadata.creationTimestamp, now)];
    },
  },
  {
    ...common,
    group: 'coordination.k8s.io',
    kind: 'Lease',
    resource: 'leases',
    singular: 'lease',
    namespaced: true,
    shortNames: [],
    columns: [NAME, col('Holder', 'string', 'Who holds the lease.'), AGE],
    row: (o, now) => [o.metadata.name, (o as Lease).spec?.holderIdentity ?? '', age(o.metadata.creationTimestamp, now)],
  },
];

export const GROUPS: readonly { name: string; version: string }[] = [
  { name: 'apps', version: 'v1' },
  { name: 'coordination.k8s.io', version: 'v1' },
];

export function findResource(group: string, version: string, resource: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function resourceForKind(kind: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => r.kind === kind);
}

/** The store key of an object (`/registry/<resource>/<namespace>/<name>`), or of a collection prefix. */
export function storeKey(r: ResourceInfo, namespace: string | undefined, name?: string): string {
  const base = r.namespaced && namespace !== undefined ? `/registry/${r.resource}/${namespace}/` : `/registry/${r.resource}/`;
  return name === undefined ? base : `${base}${name}`;
}

/** Every field selector a kind supports. */
export function fieldsOf(r: ResourceInfo, obj: KubeObject): Record<string, string> {
  return { 'metadata.name': obj.metadata.name ?? '', ...(r.namespaced ? { 'metadata.namespace': obj.metadata.namespace ?? '' } : {}), ...r.fields(obj) };
}

export function supportedFields(r: ResourceInfo): string[] {
  const sample = { apiVersion: apiVersionOf(r), kind: r.kind, metadata: {}, spec: {}, status: {} } as KubeObject;
  return Object.keys(fieldsOf(r, sample));
}

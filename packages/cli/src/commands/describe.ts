// `flotilla describe KIND NAME`: one object in words, as kubectl describe — its metadata, the
// fields that matter for its kind, and the events about it.
import { stringify } from 'yaml';
import { UsageError, parse } from '../args.ts';
import { KubeClient } from '../kube-client.ts';
import { escapeTerminalLines } from '../sanitize.ts';
import { clusterFile, collection, resourceFor } from './kube.ts';

export const DESCRIBE_USAGE = `usage: flotilla describe KIND NAME [-n NS] [--config FILE]

Shows one object: metadata, what matters for its kind (a pod's containers and conditions, a
node's capacity and pods, a deployment's replicas, a service's endpoints), and its events.`;

type Obj = Record<string, any>;

function section(title: string, lines: string[]): string {
  return lines.length === 0 ? `${title}:  <none>\n` : `${title}:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

function map(m: Record<string, string> | undefined): string {
  const entries = Object.entries(m ?? {});
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

function podDetails(p: Obj): string {
  let out = `Node:         ${p.spec.nodeName ?? '<none>'}\nStatus:       ${p.metadata.deletionTimestamp !== undefined ? 'Terminating' : (p.status?.phase ?? 'Pending')}\nIP:           ${p.status?.podIP ?? '<none>'}\n`;
  const statuses = new Map((p.status?.containerStatuses ?? []).map((c: Obj) => [c.name, c]));
  out += 'Containers:\n';
  for (const c of p.spec.containers as Obj[]) {
    const s = statuses.get(c.name) as Obj | undefined;
    const state = s?.state === undefined ? 'Waiting' : Object.keys(s.state)[0];
    const detail = s?.state?.waiting?.reason ?? s?.state?.terminated?.reason ?? '';
    out += `  ${c.name}:\n    Command:        ${[...(c.command ?? []), ...(c.args ?? [])].join(' ') || (c.image ?? '')}\n    State:          ${state}${detail === '' ? '' : ` (${detail})`}\n    Ready:          ${s?.ready === true}\n    Restart Count:  ${s?.restartCount ?? 0}\n`;
    const mapped = (p.status?.portMappings ?? []).filter((m: Obj) => m.containerName === c.name);
    if (mapped.length > 0) out += `    Ports:          ${mapped.map((m: Obj) => `${m.containerPort}→${p.status.podIP}:${m.hostPort}${m.name === undefined ? '' : ` (${m.name})`}`).join(', ')}\n`;
  }
  out += section('Conditions', (p.status?.conditions ?? []).map((c: Obj) => `${c.type.padEnd(16)}${c.status}`));
  return out;
}

function nodeDetails(n: Obj, pods: Obj[]): string {
  let out = section('Addresses', (n.status?.addresses ?? []).map((a: Obj) => `${a.type}: ${a.address}`));
  out += section('Capacity', Object.entries(n.status?.capacity ?? {}).map(([k, v]) => `${k}: ${v}`));
  out += section('Allocatable', Object.entries(n.status?.allocatable ?? {}).map(([k, v]) => `${k}: ${v}`));
  out += section('Taints', (n.spec?.taints ?? []).map((t: Obj) => `${t.key}${t.value === undefined ? '' : `=${t.value}`}:${t.effect}`));
  out += section('Conditions', (n.status?.conditions ?? []).map((c: Obj) => `${c.type.padEnd(16)}${c.status.padEnd(8)}${c.reason ?? ''}`));
  out += section('Pods', pods.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
  return out;
}

/** What describe fetches besides the object: a node's pods, a service's endpoint addresses, the events about it. */
export interface Related {
  readonly pods?: Obj[];
  readonly endpoints?: string[];
  readonly events: Obj[];
}

export async function describe(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string' }, namespace: { type: 'string', short: 'n' }, user: { type: 'string' } }, DESCRIBE_USAGE, true);
  if (positionals.length !== 2) throw new UsageError('describe needs KIND NAME', DESCRIBE_USAGE);
  const r = resourceFor(positionals[0]!);
  const name = positionals[1]!;
  const namespace = r.namespaced ? (values.namespace ?? 'default') : undefined;
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  const o: Obj = await api.ok('GET', `${collection(r, namespace)}/${encodeURIComponent(name)}`);
  let pods: Obj[] | undefined;
  let endpoints: string[] | undefined;
  if (r.kind === 'Node') pods = (await api.ok('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${name}`)}`)).items as Obj[];
  if (r.kind === 'Service') {
    const ep = await api.call('GET', `/api/v1/namespaces/${encodeURIComponent(namespace!)}/endpoints/${encodeURIComponent(name)}`);
    endpoints = ep.status === 200 ? (ep.body.subsets ?? []).flatMap((s: Obj) => (s.addresses ?? []).map((a: Obj) => `${a.ip}:${s.ports?.[0]?.port ?? '?'} (${a.nodeName ?? '?'})`)) : [];
  }
  const eventsPath = namespace === undefined ? '/api/v1/events' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`;
  const events = ((await api.ok('GET', eventsPath)).items as Obj[]).filter((e) => e.involvedObject?.name === name && e.involvedObject?.kind === r.kind);
  process.stdout.write(describeText(r.kind, namespace, o, { ...(pods === undefined ? {} : { pods }), ...(endpoints === undefined ? {} : { endpoints }), events }));
  return 0;
}

/**
 * The text describe prints. Everything in it comes from the cluster, so it is escaped for the
 * terminal as a whole: lines and tabs kept (values of several lines are printed as such, as
 * kubectl does), every other control character shown.
 */
export function describeText(kind: string, namespace: string | undefined, o: Obj, related: Related): string {
  let out = `Name:         ${o.metadata.name}\n`;
  if (namespace !== undefined) out += `Namespace:    ${namespace}\n`;
  out += `Labels:       ${map(o.metadata.labels)}\nAnnotations:  ${map(o.metadata.annotations)}\nCreated:      ${o.metadata.creationTimestamp ?? '<unknown>'}\n`;
  switch (kind) {
    case 'Pod':
      out += podDetails(o);
      break;
    case 'Node':
      out += nodeDetails(o, related.pods ?? []);
      break;
    case 'Deployment':
    case 'ReplicaSet':
      out += `Replicas:     ${o.spec.replicas ?? 1} desired | ${o.status?.updatedReplicas ?? 0} updated | ${o.status?.replicas ?? 0} total | ${o.status?.availableReplicas ?? 0} available\nSelector:     ${map(o.spec.selector?.matchLabels)}\n`;
      if (kind === 'Deployment') out += `Strategy:     ${o.spec.strategy?.type ?? 'RollingUpdate'}\n`;
      break;
    case 'Service':
      out += `Selector:     ${map(o.spec?.selector)}\nPorts:        ${(o.spec?.ports ?? []).map((p: Obj) => `${p.name ?? ''} ${p.port}→${p.targetPort ?? p.port}/${p.protocol ?? 'TCP'}`.trim()).join(', ')}\nTraffic:      ${o.spec?.internalTrafficPolicy ?? 'Cluster'}\n`;
      out += section('Endpoints', related.endpoints ?? []);
      break;
    default:
      if (o.spec !== undefined) out += `Spec:\n${stringify(o.spec).replace(/^/gm, '  ')}`;
      if (o.status !== undefined) out += `Status:\n${stringify(o.status).replace(/^/gm, '  ')}`;
  }
  const events = [...related.events].sort((a, b) => String(a.lastTimestamp ?? '').localeCompare(String(b.lastTimestamp ?? '')));
  out += section('Events', events.slice(-20).map((e) => `${String(e.lastTimestamp ?? '').padEnd(22)}${String(e.type ?? '').padEnd(9)}${String(e.reason ?? '').padEnd(18)}${e.message ?? ''}`));
  return escapeTerminalLines(out);
}

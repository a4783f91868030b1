// A container's environment, as the kubelet builds it: the basics every process needs (PATH,
// HOME, HOSTNAME), where to listen (POD_IP, PORT for the container's first declared port,
// PORT_<NAME> for named ports: the ports the agent assigned), Kubernetes-style
// <SERVICE>_SERVICE_HOST/_PORT for the Services of the pod's namespace (they point at this
// node's proxy), then the container's own env with values from the pod's fields and $(VAR)
// references expanded, as Kubernetes does.
import { ownValue, type Container, type EnvVar, type Pod, type PortMapping, type Service } from '@flotilla/api';
import { portEnvName } from './ports.ts';

/** The value of a pod field named by fieldRef.fieldPath ('' when unset). */
export function podField(pod: Pod, path: string): string | undefined {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (m !== null) return ownValue(m[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations, m[2]!) ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name ?? '';
    case 'metadata.namespace':
      return pod.metadata.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return (pod.spec as { serviceAccountName?: string }).serviceAccountName ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    default:
      return undefined;
  }
}

/** Expands $(NAME) from `vars`; $$(NAME) is a literal $(NAME); unknown references stay as written. */
export function expand(s: string, vars: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(vars, name) ? vars[name]! : whole;
  });
}

function serviceEnvName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

export interface EnvInputs {
  readonly pod: Pod;
  readonly container: Container;
  /** The node's address: the pod's IP (pods share the node's network). */
  readonly address: string;
  readonly ports: readonly PortMapping[];
  /** Services of the pod's namespace (their proxies listen on this node's address). */
  readonly services: readonly Service[];
  /** The agent's PATH and HOME. */
  readonly base: Readonly<Record<string, string>>;
}

/** The container's environment, and its command line with $(VAR) expanded. */
export function containerEnv(i: EnvInputs): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TZ']) if (i.base[k] !== undefined) env[k] = i.base[k]!;
  env['HOSTNAME'] = i.pod.metadata.name ?? '';
  for (const s of i.services) {
    const first = s.spec?.ports?.[0];
    if (first === undefined || s.metadata.name === undefined) continue;
    const n = serviceEnvName(s.metadata.name);
    env[`${n}_SERVICE_HOST`] = i.address;
    env[`${n}_SERVICE_PORT`] = String(first.port);
    for (const p of s.spec?.ports ?? []) if (p.name !== undefined && p.name !== '') env[`${n}_SERVICE_PORT_${serviceEnvName(p.name)}`] = String(p.port);
  }
  env['POD_IP'] = i.address;
  const mine = i.ports.filter((m) => m.containerName === i.container.name);
  if (mine[0] !== undefined) env['PORT'] = String(mine[0].hostPort);
  for (const m of mine) if (m.name !== undefined && m.name !== '') env[portEnvName(m.name)] = String(m.hostPort);
  for (const v of i.container.env ?? []) env[v.name] = value(v, i.pod, env);
  return env;
}

function value(v: EnvVar, pod: Pod, env: Readonly<Record<string, string>>): string {
  const path = v.valueFrom?.fieldRef?.fieldPath;
  if (path !== undefined) return podField(pod, path) ?? '';
  return expand(v.value ?? '', env);
}

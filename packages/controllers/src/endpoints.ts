// The Endpoints controller, as Kubernetes' pkg/controller/endpoint: for every Service with a
// selector, an Endpoints object of the same name listing the pods the selector matches that
// have an IP (ready ones under addresses, the others under notReadyAddresses), with the
// Service's ports resolved against each pod (to the host ports Flotilla's agent assigned, when
// the pod reports them in status.portMappings). The key is the Service's namespace/name; pod
// events enqueue the Services that select the pod (before and after the change).
import { ApiError, fromLabelSelector, matches, sameJson, WorkQueue, type EndpointAddress, type EndpointPort, type Endpoints, type EndpointSubset, type Informer, type Pod, type Service } from '@flotilla/api';
import type { Controller, ControllerContext } from './context.ts';

export interface EndpointsControllerOptions {
  /** Services reconciled at once (default 4). */
  readonly concurrency?: number;
}

export class EndpointsController implements Controller {
  readonly name = 'endpoints';
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly queue: WorkQueue;
  private started = false;

  constructor(
    private readonly ctx: ControllerContext,
    options: EndpointsControllerOptions = {},
  ) {
    this.queue = new WorkQueue((key) => this.sync(key), { name: this.name, logger: ctx.logger, ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }) });
    const enqueue = (o: { metadata: { namespace?: string; name?: string } }): void => this.enqueue(`${o.metadata.namespace}/${o.metadata.name}`);
    this.services = ctx.informers.informer<Service>('services').on({ add: enqueue, update: (_, s) => enqueue(s), delete: enqueue });
    // Endpoints deleted by someone else come back (onEndpointsDelete). As in Kubernetes, no
    // add/update handler: Endpoints created ahead of their Service are not taken for leftovers.
    this.endpoints = ctx.informers.informer<Endpoints>('endpoints').on({ delete: enqueue });
    this.pods = ctx.informers.informer<Pod>('pods').on({
      add: (p) => this.podChanged(p),
      update: (old, p) => {
        this.podChanged(old);
        this.podChanged(p);
      },
      delete: (p) => this.podChanged(p),
    });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // A full pass: Services changed while no leader ran, and Endpoints left by Services
    // deleted meanwhile (checkLeftoverEndpoints).
    for (const s of this.services.list()) this.enqueue(`${s.metadata.namespace}/${s.metadata.name}`);
    for (const e of this.endpoints.list()) this.enqueue(`${e.metadata.namespace}/${e.metadata.name}`);
  }

  stop(): void {
    this.started = false;
    this.queue.stop();
  }

  private enqueue(key: string): void {
    if (this.started) this.queue.add(key);
  }

  /** Enqueues every Service in the pod's namespace whose selector matches it (GetPodServices). */
  private podChanged(pod: Pod): void {
    if (!this.started) return;
    for (const s of this.services.listIn(pod.metadata.namespace)) {
      if (!hasSelector(s)) continue;
      if (matches(fromLabelSelector({ matchLabels: s.spec!.selector! }), pod.metadata.labels)) this.enqueue(`${s.metadata.namespace}/${s.metadata.name}`);
    }
  }

  private async sync(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    const service = this.services.get(namespace, name);
    const current = this.endpoints.get(namespace, name);
    if (service === undefined) {
      // The Service is gone: so is its Endpoints object (Kubernetes deletes it by name).
      if (current !== undefined) await this.ignoreNotFound(this.ctx.client.delete('endpoints', namespace, name, { preconditions: { uid: current.metadata.uid ?? '' } }));
      return;
    }
    // A Service without selector has Endpoints managed by someone else: leave them alone.
    if (!hasSelector(service)) return;
    const subsets = this.subsetsFor(service);
    const labels = service.metadata.labels ?? {};
    if (current === undefined) {
      const created: Endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace, labels }, subsets };
      await this.ctx.client.create('endpoints', created);
      return;
    }
    // (Compared whatever the key order: the stored copy need not keep ours.)
    if (sameJson(current.subsets ?? [], subsets) && sameJson(current.metadata.labels ?? {}, labels)) return;
    const next = structuredClone(current);
    next.subsets = subsets;
    next.metadata.labels = labels;
    await this.ctx.client.update('endpoints', next);
  }

  /** The subsets of the Service's Endpoints: pods grouped by their resolved ports, sorted (RepackSubsets). */
  private subsetsFor(service: Service): EndpointSubset[] {
    const selector = fromLabelSelector({ matchLabels: service.spec!.selector! });
    const groups = new Map<string, { ports: EndpointPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
    for (const pod of this.pods.listIn(service.metadata.namespace)) {
      if (!matches(selector, pod.metadata.labels)) continue;
      const ip = pod.status?.podIP;
      if (ip === undefined || ip === '') continue;
      // A pod that has finished runs nothing to send traffic to (ShouldPodBeInEndpoints).
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      const ports = resolvePorts(service, pod);
      if (ports === undefined) continue;
      const k = JSON.stringify(ports);
      let g = groups.get(k);
      if (g === undefined) groups.set(k, (g = { ports, ready: [], notReady: [] }));
      (isReady(pod) ? g.ready : g.notReady).push(address(pod, ip));
    }
    return [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, g]) => {
        const subset: EndpointSubset = {};
        if (g.ready.length > 0) subset.addresses = g.ready.sort(byIp);
        if (g.notReady.length > 0) subset.notReadyAddresses = g.notReady.sort(byIp);
        if (g.ports.length > 0) subset.ports = g.ports;
        return subset;
      });
  }

  private async ignoreNotFound(p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }
}

function hasSelector(s: Service): boolean {
  return s.spec?.selector !== undefined && Object.keys(s.spec.selector).length > 0;
}

/** Ready: its Ready condition is True and it is not being deleted. */
function isReady(pod: Pod): boolean {
  if (pod.metadata.deletionTimestamp !== undefined) return false;
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function address(pod: Pod, ip: string): EndpointAddress {
  const a: EndpointAddress = { ip, targetRef: { kind: 'Pod', name: pod.metadata.name ?? '', namespace: pod.metadata.namespace ?? '', uid: pod.metadata.uid ?? '' } };
  if (pod.spec.nodeName !== undefined && pod.spec.nodeName !== '') a.nodeName = pod.spec.nodeName;
  return a;
}

/**
 * The Service's ports as this pod serves them: a numeric targetPort as is, a named one looked
 * up among the pod's container ports. A port the pod does not have is left out for it (as
 * Kubernetes, which logs and skips); a pod with none of the Service's ports is left out.
 * Flotilla's agent runs containers on the node's network and reports in status.portMappings
 * where each declared container port really listens: that host port is the endpoint's port.
 * Pods without mappings (other kubelets) serve on the containerPort itself.
 */
function resolvePorts(service: Service, pod: Pod): EndpointPort[] | undefined {
  const wanted = service.spec?.ports ?? [];
  const ports: EndpointPort[] = [];
  for (const sp of wanted) {
    const protocol = sp.protocol ?? 'TCP';
    const target = sp.targetPort ?? sp.port;
    let containerPort: number | undefined;
    let container: string | undefined;
    if (typeof target === 'number') containerPort = target;
    else if (/^\d+$/.test(target)) containerPort = Number(target);
    else {
      for (const c of pod.spec.containers) {
        const found = (c.ports ?? []).find((cp) => cp.name === target && (cp.protocol ?? 'TCP') === protocol);
        if (found === undefined) continue;
        containerPort = found.containerPort;
        container = c.name;
        break;
      }
    }
    if (containerPort === undefined) continue;
    const ep: EndpointPort = { port: hostPortOf(pod, containerPort, protocol, container) ?? containerPort, protocol };
    if (sp.name !== undefined && sp.name !== '') ep.name = sp.name;
    ports.push(ep);
  }
  if (wanted.length > 0 && ports.length === 0) return undefined;
  return ports;
}

/** The host port the agent assigned to a container port (of `container`, when a named port told which). */
function hostPortOf(pod: Pod, containerPort: number, protocol: string, container: string | undefined): number | undefined {
  return pod.status?.portMappings?.find((m) => m.containerPort === containerPort && (m.protocol ?? 'TCP') === protocol && (container === undefined || m.containerName === container))?.hostPort;
}

function byIp(a: EndpointAddress, b: EndpointAddress): number {
  const ka = `${a.ip}/${a.targetRef?.name ?? ''}`;
  const kb = `${b.ip}/${b.targetRef?.name ?? ''}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}


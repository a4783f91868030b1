// Validation of objects before they are stored, in Kubernetes' terms: each problem is a field
// error with the field's path (spec.containers[0].ports[1].containerPort), which the API turns
// into a 422 Invalid Status listing every cause.
import { checkDns1123Label, checkDns1123Subdomain, checkLabelKey, checkLabelValue, fromLabelSelector, matches } from './labels.ts';
import { isQuantity, parseQuantity } from './quantity.ts';
import type { Container, Pod, PodSpec, Probe, Service, Taint, Toleration, Node } from './types/core.ts';
import type { Deployment, LabelSelector, Lease, PodTemplateSpec, ReplicaSet } from './types/apps.ts';
import type { KubeObject, ObjectMeta } from './types/meta.ts';

export type FieldErrorType = 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueDuplicate' | 'FieldValueForbidden' | 'FieldValueTooLong';

export interface FieldError {
  readonly type: FieldErrorType;
  readonly field: string;
  readonly message: string;
}

/** Collects field errors with paths relative to a base. */
export class Errors {
  readonly list: FieldError[] = [];
  required(field: string, what = 'Required value'): void {
    this.list.push({ type: 'FieldValueRequired', field, message: what });
  }
  invalid(field: string, value: unknown, why: string): void {
    this.list.push({ type: 'FieldValueInvalid', field, message: `Invalid value: ${JSON.stringify(value)}: ${why}` });
  }
  notSupported(field: string, value: unknown, allowed: readonly string[]): void {
    this.list.push({ type: 'FieldValueNotSupported', field, message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}` });
  }
  duplicate(field: string, value: unknown): void {
    this.list.push({ type: 'FieldValueDuplicate', field, message: `Duplicate value: ${JSON.stringify(value)}` });
  }
  forbidden(field: string, why: string): void {
    this.list.push({ type: 'FieldValueForbidden', field, message: `Forbidden: ${why}` });
  }
  tooLong(field: string, max: number): void {
    this.list.push({ type: 'FieldValueTooLong', field, message: `Too long: must have at most ${max} bytes` });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(e: Errors, v: unknown, field: string, checkKey: (k: string) => string | undefined, checkValue?: (v: string) => string | undefined): void {
  if (v === undefined) return;
  if (!isObject(v)) {
    e.invalid(field, v, 'must be a map of strings');
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    const badKey = checkKey(k);
    if (badKey !== undefined) e.invalid(field, k, badKey);
    if (typeof val !== 'string') e.invalid(`${field}.${k}`, val, 'must be a string');
    else if (checkValue !== undefined) {
      const badValue = checkValue(val);
      if (badValue !== undefined) e.invalid(field, val, badValue);
    }
  }
}

/** metadata: name syntax, labels, annotations, owner references, finalizers. */
export function validateMeta(e: Errors, meta: ObjectMeta | undefined, options: { namespaced: boolean; nameRule: 'subdomain' | 'label' }): void {
  if (!isObject(meta)) {
    e.required('metadata');
    return;
  }
  if (meta.name === undefined || meta.name === '') {
    if (meta.generateName === undefined) e.required('metadata.name', 'name or generateName is required');
  } else if (typeof meta.name !== 'string') {
    e.invalid('metadata.name', meta.name, 'must be a string');
  } else {
    const bad = options.nameRule === 'label' ? checkDns1123Label(meta.name) : checkDns1123Subdomain(meta.name);
    if (bad !== undefined) e.invalid('metadata.name', meta.name, `a lowercase RFC 1123 ${options.nameRule} ${bad}`);
  }
  if (meta.generateName !== undefined && (typeof meta.generateName !== 'string' || checkDns1123Subdomain(`${meta.generateName}a`) !== undefined)) {
    e.invalid('metadata.generateName', meta.generateName, 'must be a valid name prefix');
  }
  if (options.namespaced && meta.namespace !== undefined && (typeof meta.namespace !== 'string' || checkDns1123Label(meta.namespace) !== undefined)) {
    e.invalid('metadata.namespace', meta.namespace, 'must be a valid namespace name');
  }
  stringMap(e, meta.labels, 'metadata.labels', checkLabelKey, checkLabelValue);
  stringMap(e, meta.annotations, 'metadata.annotations', checkLabelKey);
  if (meta.annotations !== undefined && JSON.stringify(meta.annotations).length > 256 * 1024) {
    e.list.push({ type: 'FieldValueTooLong', field: 'metadata.annotations', message: 'Too long: must have at most 262144 bytes' });
  }
  if (meta.ownerReferences !== undefined) {
    if (!Array.isArray(meta.ownerReferences)) e.invalid('metadata.ownerReferences', meta.ownerReferences, 'must be a list');
    else
      meta.ownerReferences.forEach((o, i) => {
        const f = `metadata.ownerReferences[${i}]`;
        for (const k of ['apiVersion', 'kind', 'name', 'uid'] as const) if (typeof o?.[k] !== 'string' || o[k] === '') e.required(`${f}.${k}`);
      });
  }
  if (meta.finalizers !== undefined && (!Array.isArray(meta.finalizers) || meta.finalizers.some((x) => typeof x !== 'string' || x === ''))) {
    e.invalid('metadata.finalizers', meta.finalizers, 'must be a list of non-empty strings');
  }
}

function port(e: Errors, v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) e.invalid(field, v, 'must be between 1 and 65535, inclusive');
}

function intOrName(e: Errors, v: unknown, field: string): void {
  if (typeof v === 'string') {
    const bad = checkDns1123Label(v);
    if (bad !== undefined || v.length > 15) e.invalid(field, v, 'must be a port number or an IANA_SVC_NAME (at most 15 characters)');
  } else port(e, v, field);
}

function nonNegativeInt(e: Errors, v: unknown, field: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) e.invalid(field, v, 'must be greater than or equal to 0');
}

function probe(e: Errors, p: Probe | undefined, field: string): void {
  if (p === undefined) return;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    e.invalid(field, p, 'must be an object');
    return;
  }
  const handlers = [p.exec, p.httpGet, p.tcpSocket].filter((h) => h !== undefined).length;
  if (handlers !== 1) e.required(field, 'must specify exactly one handler (exec, httpGet or tcpSocket)');
  if (p.exec !== undefined && (!Array.isArray(p.exec.command) || p.exec.command.length === 0)) e.required(`${field}.exec.command`);
  else if (p.exec !== undefined && p.exec.command.some((x) => typeof x !== 'string' || x.includes('\0'))) e.invalid(`${field}.exec.command`, p.exec.command, 'must be a list of strings without NUL bytes');
  if (p.httpGet !== undefined) intOrName(e, p.httpGet.port, `${field}.httpGet.port`);
  if (p.tcpSocket !== undefined) intOrName(e, p.tcpSocket.port, `${field}.tcpSocket.port`);
  for (const k of ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'successThreshold', 'failureThreshold'] as const) nonNegativeInt(e, p[k], `${field}.${k}`);
}

function resources(e: Errors, r: Container['resources'], field: string): void {
  if (r === undefined) return;
  for (const kind of ['requests', 'limits'] as const) {
    const list = r[kind];
    if (list === undefined) continue;
    if (!isObject(list)) {
      e.invalid(`${field}.${kind}`, list, 'must be a map of quantities');
      continue;
    }
    for (const [name, q] of Object.entries(list)) {
      if (!isQuantity(q)) e.invalid(`${field}.${kind}[${name}]`, q, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
      else if (parseQuantity(q) < 0) e.invalid(`${field}.${kind}[${name}]`, q, 'must be greater than or equal to 0');
    }
  }
  const req = r.requests;
  const lim = r.limits;
  if (isObject(req) && isObject(lim)) {
    for (const [name, q] of Object.entries(req)) {
      const l = lim[name];
      if (isQuantity(q) && isQuantity(l) && parseQuantity(q) > parseQuantity(l)) e.invalid(`${field}.requests[${name}]`, q, `must be less than or equal to ${name} limit of ${l}`);
    }
  }
}

function container(e: Errors, c: Container, field: string, names: Set<string>): void {
  if (!isObject(c)) {
    e.invalid(field, c, 'must be an object');
    return;
  }
  if (typeof c.name !== 'string' || c.name === '') e.required(`${field}.name`);
  else {
    const bad = checkDns1123Label(c.name);
    if (bad !== undefined) e.invalid(`${field}.name`, c.name, `a lowercase RFC 1123 label ${bad}`);
    if (names.has(c.name)) e.duplicate(`${field}.name`, c.name);
    names.add(c.name);
  }
  if ((c.image === undefined || c.image === '') && (c.command === undefined || c.command.length === 0)) e.required(`${field}.image`, 'Required value: give image (the program to run) or command');
  for (const k of ['command', 'args'] as const) {
    const v = c[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.includes('\0')))) e.invalid(`${field}.${k}`, v, 'must be a list of strings without NUL bytes');
  }
  if (c.env !== undefined) {
    if (!Array.isArray(c.env)) e.invalid(`${field}.env`, c.env, 'must be a list');
    else c.env.forEach((v, i) => {
      if (typeof v?.name !== 'string' || !/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(v.name)) e.invalid(`${field}.env[${i}].name`, v?.name, "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit");
      if (v?.value !== undefined && typeof v.value !== 'string') e.invalid(`${field}.env[${i}].value`, v.value, 'must be a string');
      if (v?.valueFrom !== undefined) envSource(e, v.valueFrom, v.value, `${field}.env[${i}]`);
    });
  }
  if (c.ports !== undefined) {
    if (!Array.isArray(c.ports)) e.invalid(`${field}.ports`, c.ports, 'must be a list');
    else c.ports.forEach((p, i) => {
      port(e, p?.containerPort, `${field}.ports[${i}].containerPort`);
      if (p?.protocol !== undefined && p.protocol !== 'TCP' && p.protocol !== 'UDP') e.notSupported(`${field}.ports[${i}].protocol`, p.protocol, ['TCP', 'UDP']);
    });
  }
  resources(e, c.resources, `${field}.resources`);
  probe(e, c.livenessProbe, `${field}.livenessProbe`);
  probe(e, c.readinessProbe, `${field}.readinessProbe`);
  probe(e, c.startupProbe, `${field}.startupProbe`);
}

/** The pod fields a container's environment may take values from (fieldRef.fieldPath). */
export const ENV_FIELD_PATHS = ['metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.podIP'];

function envSource(e: Errors, from: unknown, value: unknown, field: string): void {
  if (value !== undefined && value !== '') e.invalid(`${field}.valueFrom`, '', 'may not be specified when `value` is not empty');
  if (!isObject(from)) return e.invalid(`${field}.valueFrom`, from, 'must be an object');
  const ref = from['fieldRef'];
  if (ref === undefined) return e.invalid(`${field}.valueFrom`, from, 'must have fieldRef (the only source Flotilla supports)');
  const path = isObject(ref) ? ref['fieldPath'] : undefined;
  if (typeof path !== 'string' || path === '') return e.required(`${field}.valueFrom.fieldRef.fieldPath`);
  if (/^metadata\.(labels|annotations)\['[^']+'\]$/.test(path) || ENV_FIELD_PATHS.includes(path)) return;
  e.notSupported(`${field}.valueFrom.fieldRef.fieldPath`, path, [...ENV_FIELD_PATHS, "metadata.labels['KEY']", "metadata.annotations['KEY']"]);
}

function tolerations(e: Errors, ts: Toleration[] | undefined, field: string): void {
  if (ts === undefined) return;
  if (!Array.isArray(ts)) {
    e.invalid(field, ts, 'must be a list');
    return;
  }
  ts.forEach((t, i) => {
    const f = `${field}[${i}]`;
    if (t.operator !== undefined && t.operator !== 'Exists' && t.operator !== 'Equal') e.notSupported(`${f}.operator`, t.operator, ['Equal', 'Exists']);
    if (t.operator === 'Exists' && t.value !== undefined && t.value !== '') e.invalid(`${f}.operator`, t.operator, 'value must be empty when `operator` is \'Exists\'');
    if (t.effect !== undefined && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect)) e.notSupported(`${f}.effect`, t.effect, ['NoSchedule', 'PreferNoSchedule', 'NoExecute']);
    if ((t.key === undefined || t.key === '') && t.operator !== 'Exists') e.invalid(`${f}.operator`, t.operator, 'operator must be Exists when `key` is empty, which means "match all values and all keys"');
  });
}

export function validatePodSpec(e: Errors, spec: PodSpec | undefined, field: string): void {
  if (!isObject(spec)) {
    e.required(field);
    return;
  }
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) e.required(`${field}.containers`);
  else {
    const names = new Set<string>();
    spec.containers.forEach((c, i) => container(e, c, `${field}.containers[${i}]`, names));
  }
  if (spec.restartPolicy !== undefined && !['Always', 'OnFailure', 'Never'].includes(spec.restartPolicy)) e.notSupported(`${field}.restartPolicy`, spec.restartPolicy, ['Always', 'OnFailure', 'Never']);
  if (spec.nodeName !== undefined && (typeof spec.nodeName !== 'string' || checkDns1123Subdomain(spec.nodeName) !== undefined)) e.invalid(`${field}.nodeName`, spec.nodeName, 'must be a valid node name');
  stringMap(e, spec.nodeSelector, `${field}.nodeSelector`, checkLabelKey, checkLabelValue);
  tolerations(e, spec.tolerations, `${field}.tolerations`);
  nonNegativeInt(e, spec.terminationGracePeriodSeconds, `${field}.terminationGracePeriodSeconds`);
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms !== undefined) {
    terms.forEach((t, i) =>
      (t.matchExpressions ?? []).forEach((r, j) => {
        const f = `${field}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[${i}].matchExpressions[${j}]`;
        if (!['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'].includes(r.operator)) e.notSupported(`${f}.operator`, r.operator, ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']);
        if ((r.operator === 'In' || r.operator === 'NotIn') && (r.values ?? []).length === 0) e.required(`${f}.values`, 'must be specified when `operator` is \'In\' or \'NotIn\'');
      }),
    );
  }
}

function selectorMatchesTemplate(e: Errors, selector: LabelSelector | undefined, template: PodTemplateSpec | undefined, field: string): void {
  if (typeof selector !== 'object' || selector === null || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) {
    e.required(`${field}.selector`);
    return;
  }
  stringMap(e, selector.matchLabels, `${field}.selector.matchLabels`, checkLabelKey, checkLabelValue);
  if (!isObject(template)) {
    e.required(`${field}.template`);
    return;
  }
  if (!matches(fromLabelSelector(selector), template.metadata?.labels)) e.invalid(`${field}.template.metadata.labels`, template.metadata?.labels ?? {}, '`selector` does not match template `labels`');
  validatePodSpec(e, template.spec, `${field}.template.spec`);
}

function replicas(e: Errors, v: unknown, field: string): void {
  nonNegativeInt(e, v, field);
}

/** Kind-specific checks of a new or updated object (metadata is checked separately). */
export function validateSpec(kind: string, obj: KubeObject, e: Errors): void {
  switch (kind) {
    case 'Pod':
      validatePodSpec(e, (obj as Pod).spec, 'spec');
      return;
    case 'ReplicaSet': {
      const spec = (obj as ReplicaSet).spec;
      if (!isObject(spec)) return e.required('spec');
      replicas(e, spec.replicas, 'spec.replicas');
      selectorMatchesTemplate(e, spec.selector, spec.template, 'spec');
      return;
    }
    case 'Deployment': {
      const spec = (obj as Deployment).spec;
      if (!isObject(spec)) return e.required('spec');
      replicas(e, spec.replicas, 'spec.replicas');
      nonNegativeInt(e, spec.revisionHistoryLimit, 'spec.revisionHistoryLimit');
      nonNegativeInt(e, spec.minReadySeconds, 'spec.minReadySeconds');
      selectorMatchesTemplate(e, spec.selector, spec.template, 'spec');
      const st = spec.strategy;
      if (st?.type !== undefined && st.type !== 'RollingUpdate' && st.type !== 'Recreate') e.notSupported('spec.strategy.type', st.type, ['Recreate', 'RollingUpdate']);
      if (st?.type === 'Recreate' && st.rollingUpdate !== undefined) e.forbidden('spec.strategy.rollingUpdate', 'may not be specified when strategy `type` is \'Recreate\'');
      for (const k of ['maxSurge', 'maxUnavailable'] as const) {
        const v = st?.rollingUpdate?.[k];
        if (v !== undefined && !(typeof v === 'number' ? Number.isInteger(v) && v >= 0 : /^\d+%$/.test(v))) e.invalid(`spec.strategy.rollingUpdate.${k}`, v, 'must be a non-negative integer or a percentage (e.g. 25%)');
      }
      const ru = st?.rollingUpdate;
      if (ru !== undefined && (ru.maxSurge === 0 || ru.maxSurge === '0%') && (ru.maxUnavailable === 0 || ru.maxUnavailable === '0%')) e.invalid('spec.strategy.rollingUpdate.maxUnavailable', ru.maxUnavailable, 'may not be 0 when `maxSurge` is 0');
      return;
    }
    case 'Service': {
      const spec = (obj as Service).spec;
      if (spec === undefined) return;
      if (spec.type !== undefined && !['ClusterIP', 'NodePort', 'LoadBalancer'].includes(spec.type)) e.notSupported('spec.type', spec.type, ['ClusterIP', 'NodePort', 'LoadBalancer']);
      if (spec.internalTrafficPolicy !== undefined && spec.internalTrafficPolicy !== 'Cluster' && spec.internalTrafficPolicy !== 'Local') e.notSupported('spec.internalTrafficPolicy', spec.internalTrafficPolicy, ['Cluster', 'Local']);
      const names = new Set<string>();
      (spec.ports ?? []).forEach((p, i) => {
        port(e, p.port, `spec.ports[${i}].port`);
        if (p.targetPort !== undefined) intOrName(e, p.targetPort, `spec.ports[${i}].targetPort`);
        if (p.nodePort !== undefined) port(e, p.nodePort, `spec.ports[${i}].nodePort`);
        if ((spec.ports ?? []).length > 1 && (p.name === undefined || p.name === '')) e.required(`spec.ports[${i}].name`, 'Required value: when there is more than one port, each must be named');
        if (p.name !== undefined) {
          if (names.has(p.name)) e.duplicate(`spec.ports[${i}].name`, p.name);
          names.add(p.name);
        }
      });
      stringMap(e, spec.selector, 'spec.selector', checkLabelKey, checkLabelValue);
      return;
    }
    case 'Node': {
      const taints: Taint[] = (obj as Node).spec?.taints ?? [];
      taints.forEach((t, i) => {
        const bad = checkLabelKey(t.key ?? '');
        if (bad !== undefined) e.invalid(`spec.taints[${i}].key`, t.key, bad);
        if (!['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect)) e.notSupported(`spec.taints[${i}].effect`, t.effect, ['NoSchedule', 'PreferNoSchedule', 'NoExecute']);
      });
      return;
    }
    case 'Lease': {
      const spec = (obj as Lease).spec;
      nonNegativeInt(e, spec?.leaseDurationSeconds, 'spec.leaseDurationSeconds');
      nonNegativeInt(e, spec?.leaseTransitions, 'spec.leaseTransitions');
      return;
    }
    default:
      return;
  }
}

// Status, as written by the agents (pods, nodes) and the controllers. Every component and the
// dashboard read it, so a wrong shape (containerStatuses: "x") is refused here rather than
// breaking each reader.

const POD_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];
const CONDITION_STATUSES = ['True', 'False', 'Unknown'];
const NODE_ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname', 'InternalDNS', 'ExternalDNS'];

/** The longest message a status may carry (metav1.Condition's bound for message). */
export const MAX_STATUS_MESSAGE_BYTES = 32 * 1024;
/** The longest of its other strings: reasons, names, images, addresses, times (metav1.Condition's bound for reason). */
export const MAX_STATUS_STRING_BYTES = 1024;

/**
 * Checks the status of the kinds whose status the cluster's components read (Pod, Node). Run
 * when a status is written: on create, and on updates that carry a new status.
 */
export function validateStatus(kind: string, obj: KubeObject, e: Errors): void {
  const status = (obj as { status?: unknown }).status;
  if (status === undefined || (kind !== 'Pod' && kind !== 'Node')) return;
  if (!isObject(status)) return e.invalid('status', brief(status), 'must be an object');
  if (kind === 'Pod') podStatus(e, status);
  else nodeStatus(e, status);
}

/** A value short enough to quote in an error: long strings are cut, objects and lists not shown. */
function brief(v: unknown): unknown {
  if (typeof v === 'string' && v.length > 64) return `${v.slice(0, 64)}…`;
  if (Array.isArray(v)) return '[…]';
  if (isObject(v)) return '{…}';
  return v;
}

function str(e: Errors, v: unknown, field: string, max = MAX_STATUS_STRING_BYTES): void {
  if (v === undefined) return;
  if (typeof v !== 'string') e.invalid(field, brief(v), 'must be a string');
  else if (Buffer.byteLength(v) > max) e.tooLong(field, max);
}

function bool(e: Errors, v: unknown, field: string): void {
  if (v !== undefined && typeof v !== 'boolean') e.invalid(field, brief(v), 'must be a boolean');
}

function int(e: Errors, v: unknown, field: string, min = -(2 ** 31)): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31 - 1) e.invalid(field, brief(v), min === 0 ? 'must be an integer greater than or equal to 0' : 'must be a 32-bit integer');
}

/** A list of objects, each checked by `item`. */
function objects(e: Errors, v: unknown, field: string, item: (x: Record<string, unknown>, f: string) => void): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) return e.invalid(field, brief(v), 'must be a list');
  v.forEach((x, i) => {
    if (!isObject(x)) e.invalid(`${field}[${i}]`, brief(x), 'must be an object');
    else item(x, `${field}[${i}]`);
  });
}

function object(e: Errors, v: unknown, field: string, check: (x: Record<string, unknown>) => void): void {
  if (v === undefined) return;
  if (!isObject(v)) e.invalid(field, brief(v), 'must be an object');
  else check(v);
}

function conditions(e: Errors, v: unknown, field: string): void {
  objects(e, v, field, (c, f) => {
    if (typeof c['type'] !== 'string' || c['type'] === '') e.required(`${f}.type`);
    else str(e, c['type'], `${f}.type`);
    if (typeof c['status'] !== 'string' || !CONDITION_STATUSES.includes(c['status'])) e.notSupported(`${f}.status`, brief(c['status']), CONDITION_STATUSES);
    str(e, c['reason'], `${f}.reason`);
    str(e, c['message'], `${f}.message`, MAX_STATUS_MESSAGE_BYTES);
    for (const k of ['lastTransitionTime', 'lastProbeTime', 'lastHeartbeatTime']) str(e, c[k], `${f}.${k}`);
  });
}

function containerState(e: Errors, v: unknown, field: string): void {
  object(e, v, field, (s) => {
    const given = ['waiting', 'running', 'terminated'].filter((k) => s[k] !== undefined);
    if (given.length > 1) e.forbidden(field, `may not specify more than 1 state type (has ${given.join(', ')})`);
    object(e, s['waiting'], `${field}.waiting`, (w) => {
      str(e, w['reason'], `${field}.waiting.reason`);
      str(e, w['message'], `${field}.waiting.message`, MAX_STATUS_MESSAGE_BYTES);
    });
    object(e, s['running'], `${field}.running`, (r) => str(e, r['startedAt'], `${field}.running.startedAt`));
    object(e, s['terminated'], `${field}.terminated`, (t) => {
      const f = `${field}.terminated`;
      if (t['exitCode'] === undefined) e.required(`${f}.exitCode`);
      int(e, t['exitCode'], `${f}.exitCode`);
      int(e, t['signal'], `${f}.signal`);
      str(e, t['reason'], `${f}.reason`);
      str(e, t['message'], `${f}.message`, MAX_STATUS_MESSAGE_BYTES);
      for (const k of ['startedAt', 'finishedAt', 'containerID']) str(e, t[k], `${f}.${k}`);
    });
  });
}

function containerStatuses(e: Errors, v: unknown, field: string): void {
  objects(e, v, field, (c, f) => {
    if (typeof c['name'] !== 'string' || c['name'] === '') e.required(`${f}.name`);
    else str(e, c['name'], `${f}.name`);
    bool(e, c['ready'], `${f}.ready`);
    bool(e, c['started'], `${f}.started`);
    int(e, c['restartCount'], `${f}.restartCount`, 0);
    for (const k of ['image', 'imageID', 'containerID']) str(e, c[k], `${f}.${k}`);
    containerState(e, c['state'], `${f}.state`);
    containerState(e, c['lastState'], `${f}.lastState`);
  });
}

function podStatus(e: Errors, s: Record<string, unknown>): void {
  if (s['phase'] !== undefined && (typeof s['phase'] !== 'string' || !POD_PHASES.includes(s['phase']))) e.notSupported('status.phase', brief(s['phase']), POD_PHASES);
  str(e, s['message'], 'status.message', MAX_STATUS_MESSAGE_BYTES);
  for (const k of ['reason', 'hostIP', 'podIP', 'startTime', 'nominatedNodeName', 'qosClass']) str(e, s[k], `status.${k}`);
  for (const k of ['podIPs', 'hostIPs']) objects(e, s[k], `status.${k}`, (x, f) => str(e, x['ip'], `${f}.ip`));
  conditions(e, s['conditions'], 'status.conditions');
  containerStatuses(e, s['containerStatuses'], 'status.containerStatuses');
  containerStatuses(e, s['initContainerStatuses'], 'status.initContainerStatuses');
  objects(e, s['portMappings'], 'status.portMappings', (m, f) => {
    str(e, m['containerName'], `${f}.containerName`);
    str(e, m['name'], `${f}.name`);
    port(e, m['containerPort'], `${f}.containerPort`);
    port(e, m['hostPort'], `${f}.hostPort`);
    if (m['protocol'] !== undefined && m['protocol'] !== 'TCP' && m['protocol'] !== 'UDP') e.notSupported(`${f}.protocol`, brief(m['protocol']), ['TCP', 'UDP']);
  });
}

function nodeStatus(e: Errors, s: Record<string, unknown>): void {
  for (const list of ['capacity', 'allocatable']) {
    object(e, s[list], `status.${list}`, (l) => {
      for (const [name, q] of Object.entries(l)) {
        if (!isQuantity(q)) e.invalid(`status.${list}.${name}`, brief(q), 'must be a quantity');
        else if (parseQuantity(q) < 0) e.invalid(`status.${list}.${name}`, q, 'must be greater than or equal to 0');
      }
    });
  }
  conditions(e, s['conditions'], 'status.conditions');
  objects(e, s['addresses'], 'status.addresses', (a, f) => {
    if (typeof a['type'] !== 'string' || !NODE_ADDRESS_TYPES.includes(a['type'])) e.notSupported(`${f}.type`, brief(a['type']), NODE_ADDRESS_TYPES);
    if (typeof a['address'] !== 'string' || a['address'] === '') e.required(`${f}.address`);
    else str(e, a['address'], `${f}.address`);
  });
  object(e, s['nodeInfo'], 'status.nodeInfo', (info) => {
    for (const [k, v] of Object.entries(info)) str(e, v, `status.nodeInfo.${k}`);
  });
}

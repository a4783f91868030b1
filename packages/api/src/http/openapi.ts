// OpenAPI v3 documents, as much as standard clients need: kubectl reads them to learn that the
// server validates fields itself (the fieldValidation parameter) and which lists merge by
// which key when it computes strategic merge patches.
import { GROUPS, RESOURCES, apiVersionOf, type ResourceInfo } from '../resources.ts';

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

/** GET /openapi/v3: where each group version's document is. */
export function openApiV3Index(): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of [{ name: '', version: 'v1' }, ...GROUPS]) {
    const p = gvPath(gv.name, gv.version);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=flotilla-1` };
  }
  return { paths };
}

const merge = (key: string, item: object = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }): object => ({
  type: 'array',
  items: item,
  'x-kubernetes-patch-merge-key': key,
  'x-kubernetes-patch-strategy': 'merge',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': [key],
});
const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

const container = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { ports: merge('containerPort'), env: merge('name'), volumeMounts: merge('mountPath') } };
const podSpec = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { containers: merge('name', container), initContainers: merge('name', container), volumes: merge('name') } };
const objectMeta = {
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
  properties: {
    ownerReferences: merge('uid'),
    finalizers: { type: 'array', items: { type: 'string' }, 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-list-type': 'set' },
  },
};

function schemaOf(r: ResourceInfo): object {
  const properties: Record<string, object> = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: objectMeta, spec: open, status: { ...open, properties: { conditions: merge('type') } } };
  if (r.kind === 'Pod') properties['spec'] = podSpec;
  if (r.kind === 'Deployment' || r.kind === 'ReplicaSet') properties['spec'] = { ...open, properties: { template: { ...open, properties: { metadata: objectMeta, spec: podSpec } } } };
  if (r.kind === 'Service') properties['spec'] = { ...open, properties: { ports: merge('port') } };
  return {
    type: 'object',
    properties,
    'x-kubernetes-group-version-kind': [{ group: r.group, version: r.version, kind: r.kind }],
  };
}

const fieldValidation = { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } };

/** GET /openapi/v3/{api/v1 | apis/group/version}. */
export function openApiV3Document(path: string): object | undefined {
  const gv = [{ name: '', version: 'v1' }, ...GROUPS].find((g) => gvPath(g.name, g.version) === path.replace(/\?.*$/, ''));
  if (gv === undefined) return undefined;
  const resources = RESOURCES.filter((r) => r.group === gv.name && r.version === gv.version);
  const schemas: Record<string, object> = {};
  const paths: Record<string, object> = {};
  for (const r of resources) {
    const id = `io.flotilla.${gv.name === '' ? 'core' : gv.name}.${gv.version}.${r.kind}`;
    schemas[id] = schemaOf(r);
    const ref = { $ref: `#/components/schemas/${id}` };
    const body = { content: { 'application/json': { schema: ref } } };
    const ok = { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } };
    const base = `/${gvPath(gv.name, gv.version)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}`;
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    paths[base] = {
      get: { operationId: `list${r.kind}`, responses: ok, 'x-kubernetes-action': 'list', 'x-kubernetes-group-version-kind': gvk },
      post: { operationId: `create${r.kind}`, requestBody: body, parameters: [fieldValidation], responses: ok, 'x-kubernetes-action': 'post', 'x-kubernetes-group-version-kind': gvk },
    };
    paths[`${base}/{name}`] = {
      get: { operationId: `read${r.kind}`, responses: ok, 'x-kubernetes-action': 'get', 'x-kubernetes-group-version-kind': gvk },
      put: { operationId: `replace${r.kind}`, requestBody: body, parameters: [fieldValidation], responses: ok, 'x-kubernetes-action': 'put', 'x-kubernetes-group-version-kind': gvk },
      patch: { operationId: `patch${r.kind}`, parameters: [fieldValidation], responses: ok, 'x-kubernetes-action': 'patch', 'x-kubernetes-group-version-kind': gvk },
      delete: { operationId: `delete${r.kind}`, responses: ok, 'x-kubernetes-action': 'delete', 'x-kubernetes-group-version-kind': gvk },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Flotilla', version: apiVersionOf(resources[0]!) }, paths, components: { schemas } };
}

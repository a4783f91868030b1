// kubectl's everyday verbs against a Flotilla cluster, reached through its cluster file:
// get (tables printed by the API server, as kubectl does; -o json|yaml|name|wide), apply
// (create or update from YAML files, a directory or stdin), delete, logs, scale, version.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { RESOURCES, apiVersionOf, canonicalJson, type ResourceInfo } from '@flotilla/api';
import { UsageError, parse } from '../args.ts';
import { loadClusterFile, type ClusterFile } from '../cluster-file.ts';
import { KubeClient } from '../kube-client.ts';
import { escapeTerminal } from '../sanitize.ts';

const CONFIG = `--config FILE (default: $FLOTILLA_CONFIG, or cluster-configs/local.yaml)`;

export const GET_USAGE = `usage: flotilla get KIND[,KIND…] [NAME…] [-n NS | -A] [-l SELECTOR] [-o wide|json|yaml|name] [-w] ${CONFIG}

Lists objects as a table (the columns the API server prints, as kubectl), or prints them as
JSON, YAML or kind/name. KIND is a resource name, singular, kind or short name (pods, pod, po).
-w then prints a row for every change until interrupted. Colour only on a terminal.`;
export const APPLY_USAGE = `usage: flotilla apply -f FILE|DIR|- [-n NS] ${CONFIG}

Creates each object of the YAML (or JSON) documents, or updates it if it exists (its fields
are merged into the live object).`;
export const DELETE_USAGE = `usage: flotilla delete KIND NAME… [-n NS] | flotilla delete -f FILE|DIR|- ${CONFIG}`;
export const LOGS_USAGE = `usage: flotilla logs POD [-c CONTAINER] [-f] [--previous] [--tail N] [-n NS] ${CONFIG}`;
export const SCALE_USAGE = `usage: flotilla scale KIND/NAME --replicas N [-n NS] ${CONFIG}`;
export const VERSION_USAGE = `usage: flotilla version [${CONFIG}]

Prints this client's version, and the server's when a cluster is reachable.`;

const VERSION = '0.1.0';
const common = { config: { type: 'string' as const }, namespace: { type: 'string' as const, short: 'n' }, user: { type: 'string' as const } };

export function clusterFile(path: string | undefined): ClusterFile {
  return loadClusterFile(path ?? process.env['FLOTILLA_CONFIG'] ?? 'cluster-configs/local.yaml');
}

/** The resource a user means by `word` (pods, pod, po, Pod, deployments.apps …). */
export function resourceFor(word: string): ResourceInfo {
  const w = word.toLowerCase().replace(/\.(apps|coordination\.k8s\.io)$/, '');
  const r = RESOURCES.find((x) => x.resource === w || x.singular === w || x.kind.toLowerCase() === w || x.shortNames.includes(w));
  if (r === undefined) throw new Error(`the server doesn't have a resource type "${word}" (known: ${RESOURCES.map((x) => x.resource).join(', ')})`);
  return r;
}

export function collection(r: ResourceInfo, namespace: string | undefined): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return `${base}${r.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${r.resource}`;
}

function kindName(r: ResourceInfo, name: string): string {
  return `${r.singular}${r.group === '' ? '' : `.${r.group}`}/${name}`;
}

const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

export async function get(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...common, 'all-namespaces': { type: 'boolean', short: 'A' }, selector: { type: 'string', short: 'l' }, output: { type: 'string', short: 'o' }, watch: { type: 'boolean', short: 'w' } }, GET_USAGE, true);
  if (positionals.length === 0) throw new UsageError('get needs a KIND, e.g. flotilla get pods', GET_USAGE);
  const output = values.output;
  if (output !== undefined && !['wide', 'json', 'yaml', 'name'].includes(output)) throw new UsageError(`unknown output format "${output}": use wide, json, yaml or name`, GET_USAGE);
  const kinds = positionals[0]!.split(',').map(resourceFor);
  const names = positionals.slice(1);
  if (values.watch === true && (kinds.length !== 1 || names.length > 0 || (output !== undefined && output !== 'wide'))) throw new UsageError('-w watches one KIND as a table (no names, no -o json|yaml|name)', GET_USAGE);
  let shown: Table | undefined;
  const all = values['all-namespaces'] === true;
  const namespace = all ? undefined : (values.namespace ?? 'default');
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  const query = values.selector === undefined ? '' : `?labelSelector=${encodeURIComponent(values.selector)}`;
  const objects: unknown[] = [];
  let printed = 0;
  for (const r of kinds) {
    const paths = names.length === 0 ? [`${collection(r, r.namespaced ? namespace : undefined)}${query}`] : names.map((n) => `${collection(r, r.namespaced ? (namespace ?? 'default') : undefined)}/${encodeURIComponent(n)}`);
    for (const path of paths) {
      if (output === 'json' || output === 'yaml' || output === 'name') {
        const body = await api.ok('GET', path);
        const items = body.kind?.endsWith('List') === true ? (body.items as { metadata: { name: string } }[]) : [body];
        if (output === 'name') for (const o of items) process.stdout.write(`${escapeTerminal(kindName(r, o.metadata.name))}\n`);
        else objects.push(...items.map((o) => ({ apiVersion: apiVersionOf(r), kind: r.kind, ...o })));
        continue;
      }
      const table = await api.ok('GET', path, undefined, { accept: TABLE });
      shown = table;
      printed += printTable(table, { wide: output === 'wide', namespaces: all && r.namespaced, prefix: kinds.length > 1 ? `${r.singular}${r.group === '' ? '' : `.${r.group}`}/` : '' });
    }
  }
  if (output === 'json' || output === 'yaml') {
    const doc = objects.length === 1 && names.length === 1 && kinds.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
    process.stdout.write(output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
  } else if (output !== 'name' && printed === 0) {
    process.stderr.write(all || namespace === undefined ? 'No resources found\n' : `No resources found in ${namespace} namespace.\n`);
  }
  if (values.watch !== true) return 0;
  return watchRows(api, kinds[0]!, namespace, query, shown!, { wide: output === 'wide', namespaces: all && kinds[0]!.namespaced, prefix: '' });
}

/**
 * get -w: after the table, one row per change, as kubectl prints them (the row the API server
 * prints for the object now; a deleted object's last row). Runs until interrupted; the watch
 * resumes from its last resourceVersion on another master if its master goes away.
 */
async function watchRows(api: KubeClient, r: ResourceInfo, namespace: string | undefined, query: string, first: Table, o: { wide: boolean; namespaces: boolean; prefix: string }): Promise<number> {
  const base = collection(r, r.namespaced ? namespace : undefined);
  // From the table just printed: its revision, and each object's row (for when it is deleted).
  let rv = first.metadata?.resourceVersion ?? '';
  const rowKey = (m: { name?: string; namespace?: string } | undefined): string => `${m?.namespace ?? ''}/${m?.name ?? ''}`;
  const last = new Map<string, Table>(first.rows.map((row) => [rowKey(row.object?.metadata), { ...first, rows: [row] }]));
  for (;;) {
    try {
      const res = await api.stream(`${base}?watch=true&resourceVersion=${rv}${query === '' ? '' : `&${query.slice(1)}`}`);
      let buffer = '';
      for await (const chunk of res) {
        buffer += (chunk as Buffer).toString('utf8');
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === '') continue;
          const e = JSON.parse(line) as { type: string; object: { metadata: { name: string; namespace?: string; resourceVersion?: string } } };
          if (e.type === 'ERROR') throw new Error('expired');
          rv = e.object.metadata.resourceVersion ?? rv;
          if (e.type === 'BOOKMARK') continue;
          const key = `${e.object.metadata.namespace ?? ''}/${e.object.metadata.name}`;
          const one = e.type === 'DELETED' ? last.get(key) : await api.ok('GET', `${collection(r, e.object.metadata.namespace)}/${encodeURIComponent(e.object.metadata.name)}`, undefined, { accept: TABLE }).catch(() => last.get(key));
          if (one === undefined) continue;
          last.set(key, one);
          if (e.type === 'DELETED') last.delete(key);
          printTable(one, { ...o, header: false });
        }
      }
    } catch (err) {
      if ((err as Error).message === 'expired') rv = (await api.ok('GET', `${base}${query}`)).metadata.resourceVersion as string;
      await new Promise((res) => setTimeout(res, 500));
    }
  }
}

export interface Table {
  metadata?: { resourceVersion?: string };
  columnDefinitions: { name: string; priority?: number }[];
  rows: { cells: unknown[]; object?: { metadata?: { name?: string; namespace?: string } } }[];
}

/** Prints a Table as kubectl does (upper-case headers, columns apart by 3 spaces); returns the rows printed. */
function printTable(t: Table, o: { wide: boolean; namespaces: boolean; prefix: string; header?: boolean }): number {
  const lines = tableLines(t, o);
  for (const line of lines) process.stdout.write(`${line}\n`);
  return o.header === false ? lines.length : Math.max(0, lines.length - 1);
}

/** The lines of a Table, the header first unless `header` is false. Everything from the server is escaped for the terminal. */
export function tableLines(t: Table, o: { wide: boolean; namespaces: boolean; prefix: string; header?: boolean }): string[] {
  if (t.rows.length === 0) return [];
  const cols = t.columnDefinitions.map((c, i) => ({ name: escapeTerminal(String(c.name).toUpperCase()), i, show: o.wide || (c.priority ?? 0) === 0 })).filter((c) => c.show);
  const header = [...(o.namespaces ? ['NAMESPACE'] : []), ...cols.map((c) => c.name)];
  const rows = t.rows.map((row) => [...(o.namespaces ? [escapeTerminal(row.object?.metadata?.namespace ?? '')] : []), ...cols.map((c, k) => `${k === 0 ? o.prefix : ''}${cell(row.cells[c.i])}`)]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const status = header.indexOf('STATUS');
  return (o.header === false ? rows : [header, ...rows]).map((line) => line.map((v, k) => paint(k === line.length - 1 ? v : v.padEnd(widths[k]! + 3), k === status && line !== header ? v : undefined)).join(''));
}

/** Colour only on a terminal (and not with NO_COLOR): green for what is fine, red for trouble. */
const COLOUR = process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined;
function paint(text: string, status: string | undefined): string {
  if (!COLOUR || status === undefined) return text;
  if (['Running', 'Ready', 'Active', 'Completed', 'Succeeded', 'Bound'].includes(status)) return `\u001b[32m${text}\u001b[0m`;
  if (/Error|BackOff|Failed|NotReady|Unknown|ImageNotRunnable|Evicted/.test(status)) return `\u001b[31m${text}\u001b[0m`;
  return `\u001b[33m${text}\u001b[0m`;
}

/** An object as apply compares it: without what every write changes. */
function comparable(o: { metadata?: Record<string, unknown> }): unknown {
  const { resourceVersion: _rv, generation: _g, managedFields: _m, ...metadata } = o.metadata ?? {};
  return canonicalJson({ ...o, metadata });
}

/** A table cell as printed: one line, control characters shown (JSON.stringify leaves C1 and DEL as they are). */
function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '<none>';
  return escapeTerminal(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

/** The objects of -f FILE|DIR|- (every .yaml, .yml and .json in a directory, in name order). */
function readManifests(source: string): { where: string; object: Record<string, any> }[] {
  let files: { where: string; text: string }[];
  if (source === '-') files = [{ where: 'stdin', text: readFileSync(0, 'utf8') }];
  else {
    let stat;
    try {
      stat = statSync(source);
    } catch (err) {
      throw new Error(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const paths = stat.isDirectory()
      ? readdirSync(source)
          .filter((n) => /\.(ya?ml|json)$/.test(n))
          .sort()
          .map((n) => join(source, n))
      : [source];
    if (paths.length === 0) throw new Error(`${source} has no .yaml, .yml or .json files`);
    files = paths.map((p) => ({ where: p, text: readFileSync(p, 'utf8') }));
  }
  const out: { where: string; object: Record<string, any> }[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(f.text)) {
      if ('errors' in doc && doc.errors.length > 0) throw new Error(`${f.where} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
      const object = doc.toJS() as unknown;
      if (object === null || object === undefined) continue;
      if (typeof object !== 'object' || Array.isArray(object)) throw new Error(`${f.where}: a document is not an object (a Kubernetes object has apiVersion, kind and metadata)`);
      const o = object as Record<string, any>;
      if (typeof o['kind'] !== 'string' || typeof o['apiVersion'] !== 'string' || typeof o['metadata']?.name !== 'string') throw new Error(`${f.where}: every object needs apiVersion, kind and metadata.name`);
      out.push({ where: f.where, object: o });
    }
  }
  return out;
}

export async function apply(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { ...common, filename: { type: 'string', short: 'f' } }, APPLY_USAGE);
  if (values.filename === undefined) throw new UsageError('apply needs -f FILE, a directory, or - for stdin', APPLY_USAGE);
  const manifests = readManifests(values.filename);
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  for (const { object } of manifests) {
    const r = resourceFor(object['kind']);
    const name = object['metadata'].name as string;
    const namespace = r.namespaced ? (object['metadata'].namespace ?? values.namespace ?? 'default') : undefined;
    if (namespace !== undefined) object['metadata'].namespace = namespace;
    const path = `${collection(r, namespace)}/${encodeURIComponent(name)}`;
    const current = await api.call('GET', path);
    if (current.status === 404) {
      await api.ok('POST', collection(r, namespace), object);
      process.stdout.write(`${kindName(r, name)} created\n`);
      continue;
    }
    if (current.status !== 200) throw new Error(api.explain(current));
    const { resourceVersion: _, ...metadata } = object['metadata'];
    const patch = { ...object, metadata };
    // Nothing to change (the server's dry run of the patch, defaults included, gives the live
    // object back): say so without writing, as kubectl apply.
    const dry = await api.ok('PATCH', `${path}?dryRun=All`, patch, { contentType: 'application/merge-patch+json' });
    if (JSON.stringify(comparable(dry)) === JSON.stringify(comparable(current.body))) {
      process.stdout.write(`${kindName(r, name)} unchanged\n`);
      continue;
    }
    await api.ok('PATCH', path, patch, { contentType: 'application/merge-patch+json' });
    process.stdout.write(`${kindName(r, name)} configured\n`);
  }
  return 0;
}

export async function del(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...common, filename: { type: 'string', short: 'f' } }, DELETE_USAGE, true);
  let targets: { r: ResourceInfo; name: string; namespace: string | undefined }[];
  if (values.filename !== undefined) {
    targets = readManifests(values.filename).map(({ object }) => {
      const r = resourceFor(object['kind']);
      return { r, name: object['metadata'].name, namespace: r.namespaced ? (object['metadata'].namespace ?? values.namespace ?? 'default') : undefined };
    });
  } else {
    if (positionals.length < 2) throw new UsageError('delete needs KIND NAME… or -f FILE', DELETE_USAGE);
    const r = resourceFor(positionals[0]!);
    targets = positionals.slice(1).map((name) => ({ r, name, namespace: r.namespaced ? (values.namespace ?? 'default') : undefined }));
  }
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  let failed = 0;
  for (const t of targets) {
    const a = await api.call('DELETE', `${collection(t.r, t.namespace)}/${encodeURIComponent(t.name)}`, { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' });
    if (a.status >= 200 && a.status < 300) process.stdout.write(`${t.r.singular} "${t.name}" deleted\n`);
    else {
      failed++;
      process.stderr.write(`flotilla: ${escapeTerminal(api.explain(a))}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

export async function logs(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...common, container: { type: 'string', short: 'c' }, follow: { type: 'boolean', short: 'f' }, previous: { type: 'boolean', short: 'p' }, tail: { type: 'string' } }, LOGS_USAGE, true);
  if (positionals.length !== 1) throw new UsageError('logs needs exactly one POD', LOGS_USAGE);
  if (values.tail !== undefined && !/^\d+$/.test(values.tail)) throw new UsageError('--tail must be a number of lines', LOGS_USAGE);
  const q = new URLSearchParams();
  if (values.container !== undefined) q.set('container', values.container);
  if (values.follow === true) q.set('follow', 'true');
  if (values.previous === true) q.set('previous', 'true');
  if (values.tail !== undefined) q.set('tailLines', values.tail);
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  const res = await api.stream(`/api/v1/namespaces/${encodeURIComponent(values.namespace ?? 'default')}/pods/${encodeURIComponent(positionals[0]!)}/log?${q}`);
  await new Promise<void>((resolve, reject) => {
    res.on('data', (c: Buffer) => process.stdout.write(c));
    res.on('end', resolve);
    res.on('error', reject);
  });
  return 0;
}

export async function scale(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...common, replicas: { type: 'string' } }, SCALE_USAGE, true);
  const target = positionals.length === 2 ? `${positionals[0]}/${positionals[1]}` : positionals[0];
  if (target === undefined || !target.includes('/') || positionals.length > 2) throw new UsageError('scale needs KIND/NAME (or KIND NAME)', SCALE_USAGE);
  if (values.replicas === undefined || !/^\d+$/.test(values.replicas)) throw new UsageError('scale needs --replicas N (a whole number)', SCALE_USAGE);
  const [kind, name] = target.split('/') as [string, string];
  const r = resourceFor(kind);
  if (!r.subresources.includes('scale')) throw new Error(`${r.resource} cannot be scaled (only deployments and replicasets can)`);
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  await api.ok('PATCH', `${collection(r, values.namespace ?? 'default')}/${encodeURIComponent(name)}/scale`, { spec: { replicas: Number(values.replicas) } }, { contentType: 'application/merge-patch+json' });
  process.stdout.write(`${kindName(r, name)} scaled\n`);
  return 0;
}

export async function version(args: readonly string[]): Promise<number> {
  const { values } = parse(args, common, VERSION_USAGE);
  process.stdout.write(`Client Version: flotilla ${VERSION}\n`);
  let server = 'unknown (no cluster reachable)';
  try {
    const api = await KubeClient.connect(clusterFile(values.config), values.user);
    const v = await api.ok('GET', '/version');
    server = `${v.gitVersion ?? '?'} (${v.platform ?? ''})`;
  } catch (err) {
    server = `unknown: ${(err as Error).message}`;
  }
  process.stdout.write(`Server Version: ${escapeTerminal(server)}\n`);
  return 0;
}

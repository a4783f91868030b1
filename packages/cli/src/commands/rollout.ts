// `flotilla rollout status|undo deploy/NAME`: wait for a Deployment's rollout to finish, or go
// back to an earlier revision (as kubectl does it: the template of the ReplicaSet that carries
// that revision becomes the Deployment's template again).
import { UsageError, parse } from '../args.ts';
import { KubeClient } from '../kube-client.ts';
import { clusterFile } from './kube.ts';

export const ROLLOUT_USAGE = `usage: flotilla rollout status deploy/NAME [--timeout SECONDS] [-n NS] [--config FILE]
       flotilla rollout undo deploy/NAME [--to-revision N] [-n NS] [--config FILE]`;

type Obj = Record<string, any>;
const REVISION = 'deployment.kubernetes.io/revision';

export async function rollout(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string' }, namespace: { type: 'string', short: 'n' }, user: { type: 'string' }, timeout: { type: 'string' }, 'to-revision': { type: 'string' } }, ROLLOUT_USAGE, true);
  const [action, target] = positionals;
  if ((action !== 'status' && action !== 'undo') || target === undefined || positionals.length !== 2) throw new UsageError('rollout needs status or undo, and deploy/NAME', ROLLOUT_USAGE);
  const m = /^(deploy|deployment|deployments)(?:\.apps)?\/(.+)$/.exec(target);
  if (m === null) throw new UsageError(`rollout works on deployments: give deploy/NAME, not ${target}`, ROLLOUT_USAGE);
  const name = m[2]!;
  const ns = values.namespace ?? 'default';
  const path = `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/deployments/${encodeURIComponent(name)}`;
  const api = await KubeClient.connect(clusterFile(values.config), values.user);
  if (action === 'status') {
    const t = values.timeout === undefined ? undefined : /^(\d+(?:\.\d+)?)(s|m)?$/.exec(values.timeout);
    const timeout = values.timeout === undefined ? 300 : t === null || t === undefined ? NaN : Number(t[1]) * (t[2] === 'm' ? 60 : 1);
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout must be a duration such as 90, 90s or 5m', ROLLOUT_USAGE);
    const deadline = Date.now() + timeout * 1000;
    let said = '';
    for (;;) {
      const d: Obj = await api.ok('GET', path);
      const want = d.spec.replicas ?? 1;
      const s = d.status ?? {};
      const done = (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) && (s.updatedReplicas ?? 0) === want && (s.replicas ?? 0) === want && (s.availableReplicas ?? 0) === want;
      if (done) {
        process.stdout.write(`deployment "${name}" successfully rolled out\n`);
        return 0;
      }
      const line = (s.updatedReplicas ?? 0) < want ? `Waiting for deployment "${name}" rollout to finish: ${s.updatedReplicas ?? 0} out of ${want} new replicas have been updated...` : `Waiting for deployment "${name}" rollout to finish: ${s.availableReplicas ?? 0} of ${want} updated replicas are available...`;
      if (line !== said) process.stdout.write(`${(said = line)}\n`);
      if (Date.now() > deadline) throw new Error(`deployment "${name}" did not finish rolling out within ${timeout} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const d: Obj = await api.ok('GET', path);
  const rss = ((await api.ok('GET', `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/replicasets`)).items as Obj[]).filter((rs) => (rs.metadata.ownerReferences ?? []).some((o: Obj) => o.uid === d.metadata.uid));
  const byRevision = rss.map((rs) => ({ rs, revision: Number(rs.metadata.annotations?.[REVISION] ?? 0) })).sort((a, b) => b.revision - a.revision);
  const current = Number(d.metadata.annotations?.[REVISION] ?? byRevision[0]?.revision ?? 0);
  const wanted = values['to-revision'] === undefined ? byRevision.find((x) => x.revision < current) : byRevision.find((x) => x.revision === Number(values['to-revision']));
  if (wanted === undefined) throw new Error(values['to-revision'] === undefined ? `deployment "${name}" has no revision before ${current} to go back to` : `deployment "${name}" has no revision ${values['to-revision']} (it has ${byRevision.map((x) => x.revision).join(', ')})`);
  const template = structuredClone(wanted.rs.spec.template);
  delete template.metadata?.labels?.['pod-template-hash'];
  // The whole template is replaced (a merge would keep labels only the newer revision had).
  await api.ok('PATCH', path, [{ op: 'replace', path: '/spec/template', value: template }], { contentType: 'application/json-patch+json' });
  process.stdout.write(`deployment.apps/${name} rolled back to revision ${wanted.revision}\n`);
  return 0;
}

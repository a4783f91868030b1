import { stringify } from 'yaml';
import { readClusterCa } from '../ca.ts';
import { apiUrl, findMaster, loadClusterFile } from '../cluster-file.ts';
import { UsageError, parse } from '../args.ts';

export const KUBECONFIG_USAGE = `usage: flotilla kubeconfig --config FILE [--user NAME] [--master NAME]

Prints a kubeconfig for the cluster: the API address of a master (the first one serving the
API, or --master), the cluster's CA certificate (so clients verify the server), and the token
of a user from the cluster file (the first admin, or --user). Save it and point kubectl at it:
  npx flotilla kubeconfig --config FILE > cluster.kubeconfig && kubectl --kubeconfig cluster.kubeconfig get nodes`;

export async function kubeconfig(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' }, user: { type: 'string' }, master: { type: 'string' } }, KUBECONFIG_USAGE);
  if (values.config === undefined) throw new UsageError('kubeconfig needs --config FILE', KUBECONFIG_USAGE);
  const file = loadClusterFile(values.config);
  const master = values.master === undefined ? file.masters.find((m) => m.api !== undefined) : findMaster(file, values.master);
  const server = master === undefined ? undefined : apiUrl(file, master);
  if (master === undefined || server === undefined) throw new Error(`no master in ${file.path} serves the API: give one an "api" address`);
  const user = values.user === undefined ? file.tokens.find((t) => t.role === 'admin') : file.tokens.find((t) => t.name === values.user);
  if (user === undefined) throw new Error(values.user === undefined ? `${file.path} lists no admin token under "tokens"` : `${file.path} has no token for a user named ${values.user}`);
  const cluster: Record<string, string> = { server };
  if (!file.insecureHttp) cluster['certificate-authority-data'] = Buffer.from(await readClusterCa(file, 'flotilla-kubeconfig')).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: file.cluster, cluster }],
    users: [{ name: `${file.cluster}-${user.name}`, user: { token: user.token } }],
    contexts: [{ name: file.cluster, context: { cluster: file.cluster, user: `${file.cluster}-${user.name}` } }],
    'current-context': file.cluster,
  };
  process.stdout.write(stringify(config));
  return 0;
}

import { KvClient, type StoreStatus } from '@flotilla/store';
import { clientUrl, loadClusterFile, type ClusterFile } from '../cluster-file.ts';
import { KubeClient } from '../kube-client.ts';
import { UsageError, parse } from '../args.ts';
import { escapeTerminal } from '../sanitize.ts';

export const STATUS_USAGE = `usage: flotilla status --config FILE [-o json|table]

Shows each master of the cluster: whether it answers, its Raft role and term, the leader it
follows, its commit and applied index, and how many log entries it holds.`;

export interface MasterStatus {
  readonly name: string;
  /** Its data directory's member id (a new one after it was re-added empty). */
  readonly memberId: string | null;
  readonly reachable: boolean;
  readonly role: 'leader' | 'follower' | 'candidate' | 'learner' | 'unreachable';
  readonly term: number | null;
  readonly leader: string | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly logSize: number | null;
  readonly revision: number | null;
  readonly appliedHash: string | null;
  readonly voters: readonly string[] | null;
  /** Whether it answers reads and writes now; `notServing` says why not. */
  readonly serving: boolean;
  readonly notServing?: string;
  /** Its alarms (CORRUPT, NOSPACE, DISKFULL) with what each means. */
  readonly alarms: readonly { readonly type: string; readonly message: string; readonly since: string }[];
  readonly error?: string;
}

/** Asks every master of the file for its status, in parallel, each with a short deadline. */
export async function collectStatus(file: ClusterFile, timeoutMs = 1000): Promise<MasterStatus[]> {
  const client = new KvClient({ endpoints: file.masters.map(clientUrl), secret: file.secret, name: 'flotilla-status' });
  try {
    return await Promise.all(
      file.masters.map(async (m): Promise<MasterStatus> => {
        try {
          const s: StoreStatus = await client.statusOf(clientUrl(m), timeoutMs);
          return {
            name: m.name,
            memberId: s.memberId,
            reachable: true,
            role: s.role,
            term: s.term,
            leader: s.leader,
            commitIndex: s.commitIndex,
            appliedIndex: s.appliedIndex,
            logSize: s.logSize,
            revision: s.revision,
            appliedHash: s.appliedHash,
            voters: s.voters,
            serving: s.serving,
            ...(s.notServing === undefined ? {} : { notServing: s.notServing }),
            alarms: s.alarms,
          };
        } catch (err) {
          return { name: m.name, memberId: null, reachable: false, role: 'unreachable', term: null, leader: null, commitIndex: null, appliedIndex: null, logSize: null, revision: null, appliedHash: null, voters: null, serving: false, alarms: [], error: (err as Error).message };
        }
      }),
    );
  } finally {
    client.close();
  }
}

export async function status(args: readonly string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' }, output: { type: 'string', short: 'o' } }, STATUS_USAGE);
  if (values.config === undefined) throw new UsageError('status needs --config FILE', STATUS_USAGE);
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'table') throw new UsageError(`-o must be json or table, got "${values.output}"`, STATUS_USAGE);
  const file = loadClusterFile(values.config);
  const masters = await collectStatus(file);
  // Nodes come from the API, which answers only while there is a leader.
  const nodes = masters.some((m) => m.role === 'leader') ? await collectNodes(file) : undefined;
  const verdict = verdictOf(masters, nodes);
  if (values.output === 'json') {
    process.stdout.write(`${JSON.stringify({ cluster: file.cluster, masters, ...(nodes === undefined ? {} : { nodes }), verdict })}\n`);
  } else {
    const rows = [['NAME', 'REACHABLE', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LOG', 'SERVING', 'ALARMS']];
    for (const m of masters) {
      rows.push([m.name, m.reachable ? 'yes' : 'no', m.role, cell(m.term), m.leader ?? '-', cell(m.commitIndex), cell(m.appliedIndex), cell(m.logSize), m.reachable ? (m.serving ? 'yes' : 'no') : '-', m.alarms.map((a) => a.type).join(',') || '-']);
    }
    printRows(rows);
    // What an alarm or a master that does not serve means, in its own words.
    for (const m of masters) {
      for (const a of m.alarms) process.stdout.write(`${escapeTerminal(`${m.name}: ${a.type} since ${a.since}: ${a.message}`)}\n`);
      if (m.reachable && !m.serving && m.alarms.length === 0 && m.notServing !== undefined) process.stdout.write(`${escapeTerminal(`${m.name}: not serving: ${m.notServing}`)}\n`);
    }
    if (nodes !== undefined && nodes.length > 0) {
      process.stdout.write('\n');
      printRows([['NODE', 'READY', 'ADDRESS', 'PODS'], ...nodes.map((n) => [n.name, n.ready ? 'yes' : 'no', n.address ?? '-', String(n.pods)])]);
    }
    process.stdout.write(`\n${verdict}\n`);
  }
  // Non-zero when the cluster has no leader a majority can see, for scripts.
  const leaders = new Set(masters.filter((m) => m.role === 'leader').map((m) => m.name));
  return leaders.size === 1 ? 0 : 1;
}

/** Rows as aligned columns; what masters and nodes said is shown with its control characters visible. */
function printRows(raw: string[][]): void {
  const rows = raw.map((r) => r.map(escapeTerminal));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

export interface NodeStatusLine {
  readonly name: string;
  readonly ready: boolean;
  readonly address: string | null;
  readonly pods: number;
}

/** The cluster's nodes (through the API, as the file's first admin); undefined when it cannot be asked. */
async function collectNodes(file: ClusterFile): Promise<NodeStatusLine[] | undefined> {
  if (!file.masters.some((m) => m.api !== undefined) || !file.tokens.some((t) => t.role === 'admin')) return undefined;
  try {
    const api = await KubeClient.connect(file);
    const [nodes, pods] = await Promise.all([api.ok('GET', '/api/v1/nodes'), api.ok('GET', '/api/v1/pods')]);
    return (nodes.items as { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] } }[]).map((n) => ({
      name: n.metadata.name,
      ready: n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      address: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? null,
      pods: (pods.items as { spec: { nodeName?: string } }[]).filter((p) => p.spec.nodeName === n.metadata.name).length,
    }));
  } catch {
    return undefined;
  }
}

/** One line a person can act on: is the cluster healthy, and if not, what is wrong. */
function verdictOf(masters: readonly MasterStatus[], nodes: readonly NodeStatusLine[] | undefined): string {
  const up = masters.filter((m) => m.reachable).length;
  const leader = masters.find((m) => m.role === 'leader');
  const nodePart = nodes === undefined ? '' : `, ${nodes.filter((n) => n.ready).length}/${nodes.length} nodes Ready`;
  const alarmed = masters.flatMap((m) => m.alarms.map((a) => `${m.name} ${a.type}`));
  const alarmPart = alarmed.length === 0 ? '' : `; alarms: ${alarmed.join(', ')}`;
  if (leader === undefined) return `unavailable: no leader (${up}/${masters.length} masters answer; a majority must be up to elect one)${alarmPart}`;
  const serving = masters.filter((m) => m.serving).length;
  const healthy = up === masters.length && serving === up && alarmed.length === 0 && (nodes === undefined || nodes.every((n) => n.ready));
  return `${healthy ? 'healthy' : 'degraded'}: ${leader.name} leads term ${leader.term}, ${up}/${masters.length} masters up${serving === up ? '' : `, ${serving} serving`}${nodePart}${alarmPart}`;
}

function cell(v: number | null): string {
  return v === null ? '-' : String(v);
}

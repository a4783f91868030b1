import { KvClient } from '@flotilla/store';
import { clientUrl, findMaster, loadClusterFile, peerUrl } from '../cluster-file.ts';
import { UsageError, parse } from '../args.ts';

export const MEMBER_USAGE = `usage: flotilla member add|remove --config FILE --name NAME
       flotilla member transfer --config FILE --name NAME

add       adds master NAME (listed in FILE with join: true, and already started) as a
          learner, waits until it has caught up, then makes it a voter
remove    removes master NAME from the cluster (stop its process afterwards)
transfer  hands leadership to master NAME`;

export async function member(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { config: { type: 'string' }, name: { type: 'string' } }, MEMBER_USAGE, true);
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== 'add' && action !== 'remove' && action !== 'transfer')) throw new UsageError('member needs one action: add, remove or transfer', MEMBER_USAGE);
  if (values.config === undefined || values.name === undefined) throw new UsageError(`member ${action} needs --config FILE and --name NAME`, MEMBER_USAGE);
  const file = loadClusterFile(values.config);
  const target = findMaster(file, values.name);
  // A master being added is not a member yet, so it cannot answer; one being removed may be
  // the leader itself (which then steps down once the change commits), so it is asked too.
  const endpoints = action === 'add' ? file.masters.filter((m) => m.name !== target.name) : file.masters;
  const client = new KvClient({ endpoints: endpoints.map(clientUrl), secret: file.secret, name: 'flotilla-member', timeoutMs: 30_000 });
  try {
    if (action === 'add') {
      await client.admin({ op: 'member', action: 'addLearner', name: target.name, peerUrl: peerUrl(target) });
      process.stdout.write(`${target.name} added as a learner; waiting for it to catch up…\n`);
      await client.admin({ op: 'member', action: 'promote', name: target.name });
      process.stdout.write(`${target.name} is now a voting member\n`);
    } else if (action === 'remove') {
      await client.admin({ op: 'member', action: 'remove', name: target.name });
      process.stdout.write(`${target.name} removed; stop its process once the others show a leader (flotilla status)\n`);
    } else {
      await client.admin({ op: 'transfer', to: target.name });
      process.stdout.write(`asked the leader to hand over to ${target.name}\n`);
    }
    return 0;
  } finally {
    client.close();
  }
}

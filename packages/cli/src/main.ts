// The `flotilla` command line. Every failure a user can cause ends in one sentence on stderr
// and a non-zero exit code; stack traces appear only with FLOTILLA_DEBUG=1.
import { isKvError } from '@flotilla/store';
import { isWireError } from '@flotilla/wire';
import { UsageError } from './args.ts';
import { escapeTerminal } from './sanitize.ts';
import { AGENT_USAGE, agent } from './commands/agent.ts';
import { ClusterFileError } from './cluster-file.ts';
import { KUBECONFIG_USAGE, kubeconfig } from './commands/kubeconfig.ts';
import { APPLY_USAGE, DELETE_USAGE, GET_USAGE, LOGS_USAGE, SCALE_USAGE, VERSION_USAGE, apply, del, get, logs, scale, version } from './commands/kube.ts';
import { COMPLETION_USAGE, completion } from './commands/completion.ts';
import { DESCRIBE_USAGE, describe } from './commands/describe.ts';
import { MASTER_USAGE, master } from './commands/master.ts';
import { ROLLOUT_USAGE, rollout } from './commands/rollout.ts';
import { MEMBER_USAGE, member } from './commands/member.ts';
import { STATUS_USAGE, status } from './commands/status.ts';
import { UP_USAGE, up } from './commands/up.ts';

const USAGE = `usage: flotilla <command> [options]

commands:
  up FILE                          start every master of a cluster file; Ctrl-C stops them
  master --config FILE --name N    run one master
  agent --config FILE --name N     run one worker agent (kubelet, process runtime, proxy)
  status --config FILE [-o json]   show each master's role, term, leader and log
  member add|remove|transfer ...   change the cluster's masters at run time
  kubeconfig --config FILE         print a kubeconfig for kubectl and other Kubernetes clients
  get KIND [NAME…]                 list objects (-o wide|json|yaml|name, -n NS, -A, -l SELECTOR)
  describe KIND NAME               show one object, what matters for its kind, and its events
  apply -f FILE|DIR|-              create or update objects from YAML
  delete KIND NAME… | -f FILE      delete objects
  logs POD [-f] [--previous]       print a pod's log
  scale KIND/NAME --replicas N     scale a deployment or replica set
  rollout status|undo deploy/NAME  wait for a rollout, or go back a revision
  version                          print the client's and the server's version
  completion bash|zsh              print a shell completion script

The Kubernetes commands take --config FILE (default: $FLOTILLA_CONFIG, or
cluster-configs/local.yaml) and act as the file's first admin (or --user NAME).

Run "flotilla <command> --help" for a command's options.`;

const commands: Record<string, { run: (args: readonly string[]) => Promise<number>; usage: string }> = {
  up: { run: up, usage: UP_USAGE },
  master: { run: master, usage: MASTER_USAGE },
  agent: { run: agent, usage: AGENT_USAGE },
  status: { run: status, usage: STATUS_USAGE },
  member: { run: member, usage: MEMBER_USAGE },
  kubeconfig: { run: kubeconfig, usage: KUBECONFIG_USAGE },
  get: { run: get, usage: GET_USAGE },
  describe: { run: describe, usage: DESCRIBE_USAGE },
  rollout: { run: rollout, usage: ROLLOUT_USAGE },
  apply: { run: apply, usage: APPLY_USAGE },
  delete: { run: del, usage: DELETE_USAGE },
  logs: { run: logs, usage: LOGS_USAGE },
  scale: { run: scale, usage: SCALE_USAGE },
  version: { run: version, usage: VERSION_USAGE },
  completion: { run: (args) => completion(Object.keys(commands))(args), usage: COMPLETION_USAGE },
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) throw new UsageError(`unknown command "${name}"`, USAGE);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  return command.run(rest);
}

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`flotilla: ${escapeTerminal(err.message)}\n\n${err.usage}\n`);
      process.exit(2);
    }
    const known = err instanceof ClusterFileError || isKvError(err) || isWireError(err) || (err instanceof Error && err.constructor === Error);
    // An error may quote what a master or the API answered: shown, never obeyed, by the terminal.
    const message = escapeTerminal(err instanceof Error ? err.message : String(err));
    process.stderr.write(`flotilla: ${known ? message : `internal error: ${message} (set FLOTILLA_DEBUG=1 for details)`}\n`);
    if (process.env['FLOTILLA_DEBUG'] === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);

// `flotilla completion bash|zsh`: a completion script for the shell (commands, kinds, output
// formats, files after -f and --config). Load it with: source <(npx flotilla completion bash)
import { RESOURCES } from '@flotilla/api';
import { UsageError, parse } from '../args.ts';

export const COMPLETION_USAGE = `usage: flotilla completion bash|zsh

Prints a completion script. Load it in the current shell with
  source <(npx flotilla completion bash)        # or zsh
or add that line to ~/.bashrc (~/.zshrc).`;

export function completionScript(shell: 'bash' | 'zsh', commands: readonly string[]): string {
  const kinds = [...RESOURCES.map((r) => r.resource), ...RESOURCES.flatMap((r) => r.shortNames)].join(' ');
  const bash = `_flotilla() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=( $(compgen -W "${commands.join(' ')}" -- "$cur") ); return; fi
  case "$prev" in
    --config|-f|--filename) COMPREPLY=( $(compgen -f -- "$cur") ); return;;
    -o|--output) COMPREPLY=( $(compgen -W "wide json yaml name" -- "$cur") ); return;;
  esac
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "\${COMP_WORDS[1]}" in
      get|describe|delete) COMPREPLY=( $(compgen -W "${kinds}" -- "$cur") ); return;;
      rollout) COMPREPLY=( $(compgen -W "status undo" -- "$cur") ); return;;
      member) COMPREPLY=( $(compgen -W "add remove transfer" -- "$cur") ); return;;
      completion) COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") ); return;;
    esac
  fi
  COMPREPLY=( $(compgen -W "--config --namespace -n -A -l -o -w -f --name --help" -- "$cur") )
}
complete -o default -F _flotilla flotilla
`;
  // zsh runs the bash function through bashcompinit (which calls it with ksharrays set, so the
  // 0-based indexes above hold); compinit must be loaded first.
  return shell === 'bash' ? bash : `(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}

export function completion(commands: readonly string[]) {
  return async (args: readonly string[]): Promise<number> => {
    const { positionals } = parse(args, {}, COMPLETION_USAGE, true);
    const shell = positionals[0];
    if (positionals.length !== 1 || (shell !== 'bash' && shell !== 'zsh')) throw new UsageError('completion needs bash or zsh', COMPLETION_USAGE);
    process.stdout.write(completionScript(shell, commands));
    return 0;
  };
}

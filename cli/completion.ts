/**
 * `mesh completion bash|zsh`: a completion script for the shell, printed to be sourced
 * (`source <(mesh completion bash)`). Commands and subcommands come from the command lists;
 * services and nodes from the running cluster (`mesh ls -q`, `mesh node ls -q`).
 */
import { parse, UsageError } from './args.js';
import {
  CA_COMMANDS,
  CERT_COMMANDS,
  CLUSTER_COMMANDS,
  COMMANDS,
  NODE_COMMANDS,
  REGISTRY_COMMANDS,
  SERVICE_COMMANDS,
  VOLUME_COMMANDS,
  valueCommands,
} from './commands.js';

/** Each command with subcommands, and theirs. */
function subcommands(): Map<string, string[]> {
  const lists = [
    NODE_COMMANDS,
    CERT_COMMANDS,
    CA_COMMANDS,
    CLUSTER_COMMANDS,
    VOLUME_COMMANDS,
    SERVICE_COMMANDS,
    REGISTRY_COMMANDS,
    valueCommands('secret'),
    valueCommands('config'),
  ];
  const byCommand = new Map<string, string[]>();
  for (const list of lists)
    for (const { name } of list) {
      const [command, sub] = name.split(' ') as [string, string];
      byCommand.set(command, [...(byCommand.get(command) ?? []), sub]);
    }
  return byCommand;
}

/** Commands whose next word is a service, and those whose next word (after a subcommand) is a node. */
const TAKES_SERVICE = ['ps', 'logs', 'inspect', 'rollback', 'scale'];
const NODE_SUBCOMMANDS = ['inspect', 'drain', 'activate', 'label', 'rm'];

export function bashScript(): string {
  const cases = [...subcommands()]
    .map(([command, subs]) => `    ${command}) words="${subs.join(' ')}" ;;`)
    .join('\n');
  return `# mesh completion for bash: source <(mesh completion bash)
_mesh() {
  local cur=\${COMP_WORDS[COMP_CWORD]} command=\${COMP_WORDS[1]} words=""
  if [[ $cur == -* ]]; then
    words="--help --json --data-dir"
  elif ((COMP_CWORD == 1)); then
    words="${COMMANDS.map((c) => c.name).join(' ')}"
  elif ((COMP_CWORD == 2)); then
    case $command in
${cases}
    ${TAKES_SERVICE.join('|')}) words=$(mesh ls -q 2>/dev/null) ;;
    esac
  elif ((COMP_CWORD == 3)); then
    case "$command \${COMP_WORDS[2]}" in
    ${NODE_SUBCOMMANDS.map((s) => `"node ${s}"`).join('|')}) words=$(mesh node ls -q 2>/dev/null) ;;
    "service update") words=$(mesh ls -q 2>/dev/null) ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _mesh mesh
`;
}

export function completion(args: string[]): Promise<number> {
  const [shell] = parse('completion', args, {}).positionals;
  if (shell === undefined)
    throw new UsageError(
      'completion needs a shell: mesh completion bash (or zsh); load it with: source <(mesh completion bash)',
    );
  if (shell === 'bash') process.stdout.write(bashScript());
  // zsh runs bash completions through bashcompinit.
  else if (shell === 'zsh')
    process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashScript()}`);
  else throw new UsageError(`completion: no script for "${shell}"; there is bash and zsh`);
  return Promise.resolve(0);
}

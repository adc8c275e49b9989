/**
 * What each command takes and does, for --help and for matching a typo: data only, so that a
 * command's module reads its own help without loading the others (main.ts runs them).
 */
export interface Command {
  name: string;
  args?: string;
  group: 'Cluster' | 'Stacks' | 'Other';
  summary: string;
}

/** The subcommands of `mesh node`, for their --help. */
export const NODE_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'node ls',
    summary: 'the nodes: address, status, Raft role, since, version, certificate expiry, labels',
  },
  { name: 'node inspect', args: 'NODE', summary: 'one node: its record and its tasks, as JSON' },
  { name: 'node drain', args: 'NODE', summary: 'move its tasks to other nodes; place none there' },
  { name: 'node activate', args: 'NODE', summary: 'take tasks again after a drain' },
  { name: 'node label', args: 'NODE KEY=VALUE... KEY-...', summary: 'add or remove labels' },
  {
    name: 'node rm',
    args: 'NODE...',
    summary: 'remove a node for good: its certificate is refused',
  },
];

/** The subcommands of `mesh cert`, for their --help. */
export const CERT_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'cert add',
    args: 'HOST CERT KEY',
    summary: 'serve HTTPS for HOST (or *.domain) with a PEM certificate (chain) and its key',
  },
  { name: 'cert ls', summary: 'the certificates: host, subject, expiry' },
  { name: 'cert rm', args: 'HOST', summary: 'stop serving a certificate' },
];

/** The subcommands of `mesh registry`, for their --help. */
export const REGISTRY_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'registry login',
    args: 'HOST -u USER',
    summary:
      'store a login for a private registry (checked with it first), sealed; nodes pulling from HOST use it',
  },
  { name: 'registry ls', summary: 'the logins: host, user, the services pulling from there' },
  { name: 'registry logout', args: 'HOST', summary: 'remove the login for HOST' },
];

/** The subcommands of `mesh operator`, for their --help. */
export const OPERATOR_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'operator add',
    args: 'NAME [--expires D] [-o FILE]',
    summary:
      'a certificate for a person to run mesh from elsewhere: prints the context file (mesh --context FILE …)',
  },
  { name: 'operator ls', summary: 'the operators: state, expiry, who added them' },
  {
    name: 'operator revoke',
    args: 'NAME',
    summary: 'refuse its certificate on every node, at once',
  },
];

/** The subcommands of `mesh ca`, for their --help. */
export const CA_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  { name: 'ca status', summary: 'the cluster CA, and how far a rotation has come' },
  {
    name: 'ca rotate',
    args: '[--detach] [--timeout D]',
    summary: 'a new CA: cross-signed, trusted beside the old, every node renewed, the old retired',
  },
];

/** The subcommands of `mesh cluster`, for their --help. */
export const CLUSTER_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'cluster autolock',
    args: 'on|off',
    summary: 'wrap every copy of the voters’ key with an unlock key no disk holds (or stop)',
  },
];

/** The subcommands of `mesh volume`, for their --help. */
export const VOLUME_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  { name: 'volume ls', summary: 'each pinning volume: its node, the node status, its services' },
];

/** The subcommands of `mesh service`, for their --help. */
export const SERVICE_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  {
    name: 'service update',
    args: 'SERVICE',
    summary:
      'change a running service (--image, --env-add, --env-rm, --replicas, --pull, --force), rolled out as a deploy',
  },
];

/** The subcommands of `mesh secret` and `mesh config`, for their --help. */
export function valueCommands(
  noun: 'secret' | 'config',
): Array<Pick<Command, 'name' | 'args' | 'summary'>> {
  return [
    {
      name: `${noun} create`,
      args: 'NAME [FILE|-]',
      summary: `store a ${noun} (from a file, or standard input), sealed`,
    },
    { name: `${noun} ls`, summary: `the ${noun}s: versions, size, services using them` },
    {
      name: `${noun} inspect`,
      args: 'NAME',
      summary: 'its versions, and the version each service runs (never the value)',
    },
    {
      name: `${noun} update`,
      args: 'NAME [FILE|-]',
      summary: 'a new version; the services using it roll to it',
    },
    { name: `${noun} rm`, args: 'NAME', summary: 'remove it (refused while a service uses it)' },
  ];
}

const COMMAND_LIST = [
  {
    name: 'init',
    group: 'Cluster',
    summary: 'create a cluster on this machine and print a join token',
  },
  {
    name: 'join',
    args: 'TOKEN | --token-file F',
    group: 'Cluster',
    summary: 'join this machine to the cluster a token names',
  },
  {
    name: 'agent',
    group: 'Cluster',
    summary: 'run the agent again from an existing data directory',
  },
  {
    name: 'token',
    args: '[--worker] [--rotate]',
    group: 'Cluster',
    summary: 'print a join token (--worker: never seated); --rotate invalidates earlier ones',
  },
  {
    name: 'ca',
    args: 'status|rotate',
    group: 'Cluster',
    summary: 'the cluster CA; rotate it to a new one, with no connection dropped',
  },
  {
    name: 'cluster',
    args: 'autolock on|off',
    group: 'Cluster',
    summary: 'cluster-wide settings: autolock (a restarted manager stays locked until unlocked)',
  },
  {
    name: 'unlock',
    args: '[--key-file F]',
    group: 'Cluster',
    summary: 'give a locked manager the unlock key (asked for, or read from a file or stdin)',
  },
  {
    name: 'unlock-key',
    args: '[--rotate]',
    group: 'Cluster',
    summary: 'print the unlock key of autolock; --rotate makes a new one',
  },
  {
    name: 'backup',
    args: 'FILE [--passphrase-file F]',
    group: 'Cluster',
    summary:
      'write a consistent snapshot of the cluster state; "mesh init --restore FILE" starts a cluster from it',
  },
  {
    name: 'node',
    args: 'ls|inspect|drain|activate|label|rm',
    group: 'Cluster',
    summary: 'list nodes; inspect, drain, activate, label (KEY=VALUE, KEY-) or remove one',
  },
  {
    name: 'cert',
    args: 'add|ls|rm',
    group: 'Cluster',
    summary: "the HTTPS ingress's certificates, chosen by SNI on every node",
  },
  {
    name: 'secret',
    args: 'create|ls|inspect|update|rm',
    group: 'Stacks',
    summary: 'secrets: sealed at rest, files under /run/secrets in the tasks that use them',
  },
  {
    name: 'config',
    args: 'create|ls|inspect|update|rm',
    group: 'Stacks',
    summary: 'configs: files at their target in the tasks that use them',
  },
  {
    name: 'registry',
    args: 'login|ls|logout',
    group: 'Stacks',
    summary: 'logins for private registries, used by the nodes that pull from them',
  },
  {
    name: 'volume',
    args: 'ls',
    group: 'Stacks',
    summary: 'the named volumes that keep their services on a node, and where each is',
  },
  {
    name: 'status',
    group: 'Cluster',
    summary: 'this node, its cluster and member health',
  },
  {
    name: 'deploy',
    args: '-c FILE [STACK]',
    group: 'Stacks',
    summary: 'deploy a compose file as a stack, with rollout progress (--detach, --prune)',
  },
  {
    name: 'ls',
    group: 'Stacks',
    summary: 'list stacks and their services',
  },
  {
    name: 'inspect',
    args: 'SERVICE',
    group: 'Stacks',
    summary: "a service's address, DNS name, ports and ready endpoints, as this node routes them",
  },
  {
    name: 'ps',
    args: '[STACK|SERVICE]',
    group: 'Stacks',
    summary: 'list tasks: node, state, reason, since (-a: with stopped ones)',
  },
  {
    name: 'service',
    args: 'update SERVICE',
    group: 'Stacks',
    summary: 'change a running service without its file: image, environment, replicas, a restart',
  },
  {
    name: 'scale',
    args: 'SERVICE=N',
    group: 'Stacks',
    summary:
      'change the number of replicas (not of an autoscaled service: its bounds are in its file)',
  },
  {
    name: 'rollback',
    args: 'SERVICE',
    group: 'Stacks',
    summary: 'go back to the service definition before its last update',
  },
  {
    name: 'rm',
    args: 'STACK',
    group: 'Stacks',
    summary: 'remove a stack and all its containers',
  },
  {
    name: 'logs',
    args: 'SERVICE [-f] | --task TASK',
    group: 'Stacks',
    summary: 'logs from every node, prefixed by task',
  },
  {
    name: 'operator',
    args: 'add|ls|revoke',
    group: 'Cluster',
    summary: 'people who run mesh from elsewhere: mesh --context FILE <command>',
  },
  {
    name: 'uninstall',
    group: 'Cluster',
    summary: 'this node leaves the cluster gracefully, and its service unit (--install) goes',
  },
  {
    name: 'events',
    args: '[-f] [--since D] [--type T]',
    group: 'Cluster',
    summary: 'what happened: tasks, rollouts, nodes, leaders, certificates (-f: as it happens)',
  },
  {
    name: 'dashboard',
    args: '[--port N] [--no-open]',
    group: 'Cluster',
    summary: 'the cluster in a browser, on 127.0.0.1 only, through a link that logs in once',
  },
  {
    name: 'completion',
    args: 'bash|zsh',
    group: 'Other',
    summary: 'a completion script: source <(mesh completion bash)',
  },
] as const satisfies readonly Command[];

export const COMMANDS: readonly Command[] = COMMAND_LIST;

/** Every command's name: main.ts has a runner for each. */
export type CommandName = (typeof COMMAND_LIST)[number]['name'];

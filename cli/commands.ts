// Each command loads only what it uses: the CLI starts fast, the agent's libraries stay unloaded.
const cluster = () => import('./cluster.js');
const daemon = () => import('./daemon.js');
const stacks = () => import('./stacks.js');
const certs = () => import('./certs.js');
const values = () => import('./values.js');
const backups = () => import('./backup.js');
const caCommands = () => import('./ca.js');

export interface Command {
  name: string;
  args?: string;
  group: 'Cluster' | 'Stacks' | 'Other';
  summary: string;
  run: (args: string[]) => Promise<number>;
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

/** The subcommands of `mesh ca`, for their --help. */
export const CA_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  { name: 'ca status', summary: 'the cluster CA, and how far a rotation has come' },
  {
    name: 'ca rotate',
    args: '[--detach] [--timeout D]',
    summary: 'a new CA: cross-signed, trusted beside the old, every node renewed, the old retired',
  },
];

/** The subcommands of `mesh volume`, for their --help. */
export const VOLUME_COMMANDS: Array<Pick<Command, 'name' | 'args' | 'summary'>> = [
  { name: 'volume ls', summary: 'each pinning volume: its node, the node status, its services' },
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

export const COMMANDS: Command[] = [
  {
    name: 'init',
    group: 'Cluster',
    summary: 'create a cluster on this machine and print a join token',
    run: async (args) => (await daemon()).init(args),
  },
  {
    name: 'join',
    args: 'TOKEN',
    group: 'Cluster',
    summary: 'join this machine to the cluster a token names',
    run: async (args) => (await daemon()).join(args),
  },
  {
    name: 'agent',
    group: 'Cluster',
    summary: 'run the agent again from an existing data directory',
    run: async (args) => (await daemon()).agent(args),
  },
  {
    name: 'token',
    args: '[--rotate]',
    group: 'Cluster',
    summary: 'print the join token; --rotate invalidates earlier ones',
    run: async (args) => (await cluster()).token(args),
  },
  {
    name: 'ca',
    args: 'status|rotate',
    group: 'Cluster',
    summary: 'the cluster CA; rotate it to a new one, with no connection dropped',
    run: async (args) => (await caCommands()).ca(args),
  },
  {
    name: 'backup',
    args: 'FILE [--passphrase-file F]',
    group: 'Cluster',
    summary:
      'write a consistent snapshot of the cluster state; "mesh init --restore FILE" starts a cluster from it',
    run: async (args) => (await backups()).backup(args),
  },
  {
    name: 'node',
    args: 'ls|inspect|drain|activate|label|rm',
    group: 'Cluster',
    summary: 'list nodes; inspect, drain, activate, label (KEY=VALUE, KEY-) or remove one',
    run: async (args) => (await cluster()).node(args),
  },
  {
    name: 'cert',
    args: 'add|ls|rm',
    group: 'Cluster',
    summary: "the HTTPS ingress's certificates, chosen by SNI on every node",
    run: async (args) => (await certs()).cert(args),
  },
  {
    name: 'secret',
    args: 'create|ls|inspect|update|rm',
    group: 'Stacks',
    summary: 'secrets: sealed at rest, files under /run/secrets in the tasks that use them',
    run: async (args) => (await values()).value('secret', args),
  },
  {
    name: 'config',
    args: 'create|ls|inspect|update|rm',
    group: 'Stacks',
    summary: 'configs: files at their target in the tasks that use them',
    run: async (args) => (await values()).value('config', args),
  },
  {
    name: 'volume',
    args: 'ls',
    group: 'Stacks',
    summary: 'the named volumes that keep their services on a node, and where each is',
    run: async (args) => (await stacks()).volume(args),
  },
  {
    name: 'status',
    group: 'Cluster',
    summary: 'this node, its cluster and member health',
    run: async (args) => (await cluster()).status(args),
  },
  {
    name: 'deploy',
    args: '-c FILE [STACK]',
    group: 'Stacks',
    summary: 'deploy a compose file as a stack, with rollout progress (--detach, --prune)',
    run: async (args) => (await stacks()).deploy(args),
  },
  {
    name: 'ls',
    group: 'Stacks',
    summary: 'list stacks and their services',
    run: async (args) => (await stacks()).ls(args),
  },
  {
    name: 'inspect',
    args: 'SERVICE',
    group: 'Stacks',
    summary: "a service's address, DNS name, ports and ready endpoints, as this node routes them",
    run: async (args) => (await stacks()).inspect(args),
  },
  {
    name: 'ps',
    args: '[STACK|SERVICE]',
    group: 'Stacks',
    summary: 'list tasks: node, state, reason, since (-a: with stopped ones)',
    run: async (args) => (await stacks()).ps(args),
  },
  {
    name: 'scale',
    args: 'SERVICE=N',
    group: 'Stacks',
    summary: 'change the number of replicas',
    run: async (args) => (await stacks()).scale(args),
  },
  {
    name: 'rollback',
    args: 'SERVICE',
    group: 'Stacks',
    summary: 'go back to the service definition before its last update',
    run: async (args) => (await stacks()).rollback(args),
  },
  {
    name: 'rm',
    args: 'STACK',
    group: 'Stacks',
    summary: 'remove a stack and all its containers',
    run: async (args) => (await stacks()).rm(args),
  },
  {
    name: 'logs',
    args: 'SERVICE [-f]',
    group: 'Stacks',
    summary: 'logs from every node, prefixed by task',
    run: async (args) => (await stacks()).logs(args),
  },
];

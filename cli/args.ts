import { networkInterfaces } from 'node:os';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultDataDir } from '../agent/datadir.js';
import { EXIT, UserError } from '../mesh/user-error.js';
import {
  CERT_COMMANDS,
  CLUSTER_COMMANDS,
  COMMANDS,
  NODE_COMMANDS,
  SERVICE_COMMANDS,
  VOLUME_COMMANDS,
  valueCommands,
} from './commands.js';
import { parseDuration } from './stackfile/values.js';

/** A mistake on the command line: printed as one line, without a stack trace. */
export class UsageError extends UserError {
  override name = 'UsageError';
  override readonly exitCode: number = EXIT.usage;
}

/** --help or -h on a command: its usage goes to stdout, and mesh exits 0. */
export class HelpRequest extends UserError {
  override name = 'HelpRequest';
  override readonly exitCode: number = 0;
}

const FLAG_HELP: Record<string, string> = {
  'data-dir': "the agent's data dir (default $MESH_DATA_DIR, /var/lib/mesh as root, else ~/.mesh)",
  json: 'print JSON instead of a table or text',
  quiet: 'print only the IDs, one a line',
  filter:
    'KEY=VALUE: only rows whose field KEY is VALUE (a list holding it; labels: KEY or KEY=VALUE); repeatable: all keys, any value of one key',
  format:
    "each row through a template: '{{.Name}}\t{{.State}}' ({{json .}}: the whole row); the fields are those of --json",
  advertise: 'the address other nodes reach this one at (default: the first non-loopback IPv4)',
  port: 'the TLS port for the other nodes (default 7946)',
  label: 'a node label KEY=VALUE for placement constraints (repeatable)',
  'log-level': 'trace, debug, info (default), warn or error',
  'log-format': 'json or pretty (default: pretty on a terminal, json otherwise)',
  'cert-validity':
    'how long node certificates last (default 90d); each renews itself at two thirds of it',
  'force-new-cluster':
    'quorum is lost for good: this surviving voter becomes the only one, keeping its state',
  'reschedule-after': 'how long a node may be unreachable before its tasks move (default 3s)',
  'dns-port': 'the port of the DNS server on the node address (default 53; 0: none)',
  'dns-upstream':
    'a resolver HOST[:PORT] for names outside mesh. (repeatable; default: /etc/resolv.conf; "none")',
  'http-port': 'the HTTP ingress port on the node address (default 80; 0: none)',
  'https-port': 'the HTTPS ingress port on the node address (default 443; 0: none)',
  'trusted-proxy':
    'a load balancer (IPv4 CIDR) whose X-Forwarded-* headers are believed (repeatable)',
  'http-timeout':
    'how long a replica may take to start its answer before the client gets 504 (default 5m)',
  'udp-timeout':
    'how long a UDP flow (a client address and port) keeps its replica without a datagram either way (default 5m)',
  'http-limit':
    'KEY=VALUE (repeatable): header-timeout, body-timeout, send-timeout (60s), keepalive-timeout (75s), body-buffer (1m), client-connections (256), replica-requests (128), queue-length (4096), queue-timeout (30s)',
  install:
    'make the node, then write a systemd unit that runs it (enabled and started where systemd runs)',
  'ingress-workers':
    'processes serving the HTTP ingress, all on the same ports (default: one per core)',
  'metrics-addr':
    'where Prometheus scrapes GET /metrics, HOST:PORT (default: the advertise address, port 9464; "none": nowhere)',
  'service-range': 'the range service addresses come from (default 10.250.0.0/16)',
  'bridge-range': "the range each node's stack bridges take a /24 of (default 10.251.0.0/16)",
  'compose-file':
    'the compose or stack file to deploy (repeatable: merged in order, as Compose does)',
  detach: 'return once the change is accepted, without following the rollout',
  prune: 'remove services of the stack that the file no longer declares',
  'dry-run': 'check everything and show what would be deployed; change nothing',
  strict:
    'refuse the deploy when a placement constraint fits no node yet (default: deploy; it waits, pending)',
  timeout: 'how long to follow the rollout before giving up (default 5m)',
  all: 'with stopped tasks too (the last 5 finished of each slot)',
  follow: 'keep printing new output',
  'operator add --expires': 'how long its certificate lasts (default 90d)',
  'operator add --output': 'write the context to this new file (mode 0600) instead of printing it',
  'dashboard --port': 'the port on 127.0.0.1 (default: one the system picks)',
  'dashboard --no-open': 'only print the link; do not open it in a browser of this desktop',
  'events --since': 'only events this recent (a duration: 10m, 1h)',
  'events --type':
    'only events of this type (repeatable, or comma-separated): task, service, node, raft, certificate, ca, write',
  tail: 'how many lines of each task to start with (default 100)',
  task: 'one task, by its ID: a finished one too, while it is kept (mesh ps -a lists them)',
  force: 'remove a node that is still alive',
  'registry login --username': 'the user to log in as',
  'registry login --password':
    'the password or token (stays in the shell history: prefer --password-stdin)',
  'registry login --password-stdin': 'read the password or token from standard input',
  'service update --force': 'replace every task, even when nothing else changes',
  image: 'the image tasks run from now on',
  'env-add': 'NAME=VALUE: set a variable (repeatable)',
  'env-rm': 'NAME: remove a variable (repeatable)',
  replicas: 'how many tasks to run',
  pull: 'when nodes pull the image: always (before each task), missing (the default) or never',
  rotate: 'make a new join secret: earlier tokens (of the kind asked) stop working',
  worker:
    'a worker token: its node runs tasks but is never seated as a voter nor holds the voters’ key',
  restore: 'start the cluster from a backup file (mesh backup)',
  'passphrase-file':
    'a file whose first line is the backup passphrase (12+ characters; "-": standard input)',
  'voters-key': "pki/secrets.key of a voter, for a backup sealed with the voters' key",
  'keep-ca': "with --restore: keep the backup's CA and cluster ID (default: a new CA)",
  autolock:
    'wrap every copy of the voters’ key with an unlock key no disk holds: a restarted manager stays locked until mesh unlock',
  'token-file': 'a file whose first line is the join token ("-": standard input), kept out of ps',
  'key-file': 'a file whose first line is the unlock key ("-": standard input; default: asked for)',
};

/** A command's usage: what it takes and each option, with what it is for. */
function usage(command: string, options: Options): string {
  const known = [
    ...COMMANDS,
    ...NODE_COMMANDS,
    ...CERT_COMMANDS,
    ...VOLUME_COMMANDS,
    ...SERVICE_COMMANDS,
    ...CLUSTER_COMMANDS,
    ...valueCommands('secret'),
    ...valueCommands('config'),
  ].find((c) => c.name === command);
  const lines = [`Usage: mesh ${command} ${known?.args ?? ''} [options]`.replace(/ +/g, ' ')];
  if (known) lines.push('', known.summary);
  lines.push('', 'Options:');
  const flags = Object.entries(options).map(([name, option]) => {
    const short = option.short ? `-${option.short}, ` : '    ';
    return [
      `${short}--${name}${option.type === 'string' ? ' VALUE' : ''}`,
      // A flag that means something else for one command says so there.
      FLAG_HELP[`${command} --${name}`] ?? FLAG_HELP[name] ?? '',
    ];
  });
  flags.push(['-h, --help', 'this text']);
  const width = Math.max(...flags.map(([flag]) => (flag as string).length));
  for (const [flag, help] of flags) lines.push(`  ${(flag as string).padEnd(width)}  ${help}`);
  return lines.join('\n');
}

/**
 * Runs the subcommand of a command with subcommands (`mesh node ls`, `mesh cert add`); without
 * one, or with --help, the usage lists them.
 */
export function runSubcommand(
  command: string,
  args: string[],
  handlers: Record<string, (args: string[]) => Promise<number>>,
  list: Array<{ name: string; args?: string; summary: string }>,
): Promise<number> {
  const [sub, ...rest] = args;
  const handler = sub === undefined ? undefined : handlers[sub];
  if (handler) return handler(rest);
  if (sub === undefined || sub === '--help' || sub === '-h')
    throw new HelpRequest(subcommandUsage(command, list));
  throw new UsageError(`${command} ${sub}: use ${command} ${Object.keys(handlers).join('|')}`);
}

/** The usage of a command with subcommands (`mesh node`, `mesh cert`): each with what it does. */
function subcommandUsage(
  command: string,
  list: Array<{ name: string; args?: string; summary: string }>,
): string {
  const width = Math.max(...list.map((c) => `${c.name} ${c.args ?? ''}`.length));
  return [
    `Usage: mesh ${command} <command> [options]`,
    '',
    ...list.map((c) => `  ${`${c.name} ${c.args ?? ''}`.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help  this text; after a command, what that command takes',
  ].join('\n');
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const DATA_DIR: Options = { 'data-dir': { type: 'string' } };
export const JSON_OUTPUT: Options = { json: { type: 'boolean' } };

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The candidate a typo most likely meant (at most two edits away), if any. */
export function closest(typed: string, candidates: string[]): string | undefined {
  const [best] = candidates
    .map((name) => ({ name, distance: editDistance(typed, name) }))
    .sort((x, y) => x.distance - y.distance);
  return best && best.distance <= 2 ? best.name : undefined;
}

/**
 * parseArgs, with its errors turned into one line naming the command, the argument and what is
 * expected.
 */
export function parse(command: string, args: string[], options: Options) {
  if (args.includes('--help') || args.includes('-h'))
    throw new HelpRequest(usage(command, options));
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const help = `see "mesh ${command} --help"`;
    const option = /'(-[^' ]*)/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const meant = closest(option.replace(/^-+/, ''), Object.keys(options));
      throw new UsageError(
        `${command}: unknown option ${option}${meant ? ` (did you mean --${meant}?)` : ''}; ${help}`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = /--([\w-]+)/.exec(message)?.[1] ?? option;
      const expects = options[name]?.type === 'string' ? 'a value' : 'no value';
      throw new UsageError(`${command}: --${name} takes ${expects}: ${FLAG_HELP[name] ?? help}`);
    }
    throw new UsageError(`${command}: ${message}; ${help}`);
  }
}

export function dataDirOf(values: Record<string, unknown>): string {
  return typeof values['data-dir'] === 'string' ? values['data-dir'] : defaultDataDir();
}

/** --label k=v, repeatable. */
export function labelsOf(values: Record<string, unknown>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const label of (values.label as string[] | undefined) ?? []) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label needs KEY=VALUE, got "${label}"`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  return labels;
}

/** The first non-internal IPv4 address, which is what a one-NIC machine wants advertised. */
export function defaultAdvertise(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

/** A duration flag (10s, 1m30s, 500ms), or undefined when not given. */
export function durationOf(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(String(value));
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

export function portOf(values: Record<string, unknown>, fallback: number, flag = 'port'): number {
  if (values[flag] === undefined) return fallback;
  const port = Number(values[flag]);
  // --dns-port 0, --http-port 0, --https-port 0: not served on the node address.
  const min = flag === 'port' ? 1 : 0;
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new UsageError(
      `--${flag} needs a port number (${min}-65535), got "${String(values[flag])}"`,
    );
  }
  return port;
}

#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { EXIT, UserError } from '../mesh/user-error.js';
import { closest, HelpRequest, UsageError } from './args.js';

const TOKEN_PREFIX = 'MESH-1-';

import { COMMANDS, type CommandName } from './commands.js';

// Each command loads only what it uses: the CLI starts fast, the agent's libraries stay unloaded.
const cluster = () => import('./cluster.js');
const daemon = () => import('./daemon.js');
const stacks = () => import('./stacks.js');
const certs = () => import('./certs.js');
const values = () => import('./values.js');
const backups = () => import('./backup.js');
const caCommands = () => import('./ca.js');
const autolocks = () => import('./autolock.js');

const RUN: Record<CommandName, (args: string[]) => Promise<number>> = {
  init: async (args) => (await daemon()).init(args),
  join: async (args) => (await daemon()).join(args),
  agent: async (args) => (await daemon()).agent(args),
  token: async (args) => (await cluster()).token(args),
  ca: async (args) => (await caCommands()).ca(args),
  cluster: async (args) => (await autolocks()).cluster(args),
  unlock: async (args) => (await autolocks()).unlock(args),
  'unlock-key': async (args) => (await autolocks()).unlockKey(args),
  backup: async (args) => (await backups()).backup(args),
  node: async (args) => (await cluster()).node(args),
  cert: async (args) => (await certs()).cert(args),
  secret: async (args) => (await values()).value('secret', args),
  config: async (args) => (await values()).value('config', args),
  registry: async (args) => (await import('./registry.js')).registry(args),
  volume: async (args) => (await stacks()).volume(args),
  status: async (args) => (await cluster()).status(args),
  deploy: async (args) => (await stacks()).deploy(args),
  ls: async (args) => (await stacks()).ls(args),
  inspect: async (args) => (await stacks()).inspect(args),
  ps: async (args) => (await stacks()).ps(args),
  service: async (args) => (await stacks()).service(args),
  scale: async (args) => (await stacks()).scale(args),
  rollback: async (args) => (await stacks()).rollback(args),
  rm: async (args) => (await stacks()).rm(args),
  logs: async (args) => (await stacks()).logs(args),
  events: async (args) => (await import('./events.js')).events(args),
  dashboard: async (args) => (await import('./dashboard/command.js')).dashboard(args),
  uninstall: async (args) => (await import('./install.js')).uninstall(args),
  operator: async (args) => (await import('./operator.js')).operator(args),
  completion: async (args) => (await import('./completion.js')).completion(args),
};

const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => `${c.name} ${c.args ?? ''}`.length));
  const lines = [
    `mesh ${version} — a small container orchestrator`,
    '',
    'Usage: mesh <command> [options]',
  ];
  const other = [
    { name: 'help', summary: 'this text' },
    { name: 'version', summary: 'print the version' },
  ];
  for (const group of ['Cluster', 'Stacks', 'Other'] as const) {
    lines.push('', `${group}:`);
    for (const c of [
      ...COMMANDS.filter((command) => command.group === group),
      ...(group === 'Other' ? other : []),
    ]) {
      const usage = `${c.name} ${'args' in c ? (c.args ?? '') : ''}`.padEnd(width);
      lines.push(`  ${usage}  ${c.summary}`);
    }
  }
  lines.push(
    '',
    'Most commands take --data-dir (default $MESH_DATA_DIR, /var/lib/mesh as root, else ~/.mesh);',
  );
  lines.push('listings take --json, -q, --filter KEY=VALUE and --format TEMPLATE.');
  lines.push(
    'mesh --context FILE <command> (or $MESH_CONTEXT) runs it on the cluster a context names',
    '(mesh operator add prints one), over mTLS, as that operator.',
  );
  lines.push(
    '',
    'Exit codes: 0 done; 1 refused (by the cluster, or a file or token checked), or a rollout failed;',
    '2 usage (the command line); 3 sent, but whether it was applied is unknown (look with mesh ps/ls);',
    '4 the agent could not be reached, could not answer now, or failed; 70 a bug in mesh.',
  );
  return lines.join('\n');
}

function suggestion(name: string): string {
  const best = closest(
    name,
    COMMANDS.map((c) => c.name),
  );
  return best ? ` (did you mean "${best}"?)` : '';
}

/**
 * A join token in the arguments is seen by every local user in `ps` for as long as the agent runs:
 * it is blanked out of the process's command line at once (the title overwrites it on Linux).
 * `mesh join` also takes it from --token-file or $MESH_JOIN_TOKEN, never shown at all.
 */
function hideTokens(argv: string[]): void {
  if (!argv.some((arg) => arg.startsWith(TOKEN_PREFIX))) return;
  process.title = [
    'mesh',
    ...argv.map((arg) => (arg.startsWith(TOKEN_PREFIX) ? '(token)' : arg)),
  ].join(' ');
}

/**
 * `mesh --context FILE <command>`: every command goes to a manager of the context's cluster, as
 * its operator, instead of the local agent ($MESH_CONTEXT says the same).
 */
function takeContext(argv: string[]): string[] {
  const [first, file, ...rest] = argv;
  if (first?.startsWith('--context=')) {
    process.env.MESH_CONTEXT = first.slice('--context='.length);
    return argv.slice(1);
  }
  if (first !== '--context') return argv;
  if (!file) throw new UsageError('--context takes the FILE "mesh operator add" printed');
  process.env.MESH_CONTEXT = file;
  return rest;
}

async function run(given: string[]): Promise<number> {
  hideTokens(given);
  const argv = takeContext(given);
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${help()}\n`);
    return 0;
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command)
    throw new UsageError(`unknown command "${name}"${suggestion(name)}; see "mesh --help"`);
  return RUN[command.name as CommandName](args);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    if (error instanceof HelpRequest) {
      process.stdout.write(`${error.message}\n`);
      return;
    }
    if (error instanceof UserError) {
      process.stderr.write(`mesh: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`mesh: unexpected failure: ${error.stack ?? error.message}\n`);
    process.exitCode = EXIT.bug;
  },
);

import { readFileSync } from 'node:fs';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, runSubcommand, UsageError } from './args.js';
import { REGISTRY_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { LISTING_OPTIONS, printListing } from './listing.js';
import { ago, print, table } from './output.js';

/** `mesh registry login|logout|ls`: logins for private registries, as `docker login` keeps them. */
export function registry(args: string[]): Promise<number> {
  return runSubcommand('registry', args, { login, logout, ls: list }, REGISTRY_COMMANDS);
}

/** A password typed at a terminal, not echoed. */
function readHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  let typed = '';
  return new Promise((resolve, reject) => {
    const done = () => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          done();
          resolve(typed);
          return;
        }
        if (char === '\u0003') {
          done();
          reject(new UsageError('registry login: cancelled'));
          return;
        }
        typed = char === '\u007f' ? typed.slice(0, -1) : typed + char;
      }
    };
    input.on('data', onData);
  });
}

/** The password: --password-stdin, --password, or typed at the terminal. */
async function passwordOf(values: Record<string, unknown>): Promise<string> {
  if (values['password-stdin']) {
    if (values.password !== undefined)
      throw new UsageError('registry login: --password and --password-stdin, not both');
    // As docker login: the line's end is not part of it.
    return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  }
  if (typeof values.password === 'string') {
    process.stderr.write(
      'mesh: a password on the command line stays in the shell history; --password-stdin keeps it out\n',
    );
    return values.password;
  }
  if (!process.stdin.isTTY)
    throw new UsageError(
      'registry login: no password: give it on standard input with --password-stdin',
    );
  return readHidden('Password: ');
}

async function login(args: string[]): Promise<number> {
  const { values, positionals } = parse('registry login', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    username: { type: 'string', short: 'u' },
    password: { type: 'string', short: 'p' },
    'password-stdin': { type: 'boolean' },
  });
  const [host] = positionals;
  if (!host) throw new UsageError('registry login needs a HOST (registry.example.com[:PORT])');
  if (typeof values.username !== 'string')
    throw new UsageError('registry login: give the user with -u USER');
  const row = await callAgent(dataDirOf(values), 'POST /v1/registries', {
    host,
    username: values.username,
    password: await passwordOf(values),
  });
  print(Boolean(values.json), row, () =>
    [
      `mesh: login for ${row.host} stored sealed, as ${row.username}${row.checked ? '' : ' (not checked: this node has no Docker Engine to ask the registry)'}`,
      '  the nodes pulling images from there get it when they start a task',
    ].join('\n'),
  );
  return 0;
}

async function logout(args: string[]): Promise<number> {
  const { values, positionals } = parse('registry logout', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [host] = positionals;
  if (!host) throw new UsageError('registry logout needs a HOST');
  const result = await callAgent(dataDirOf(values), 'POST /v1/registries/rm', { host });
  print(Boolean(values.json), result, () => `mesh: login for ${result.host} removed`);
  return 0;
}

async function list(args: string[]): Promise<number> {
  const { values } = parse('registry ls', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    ...LISTING_OPTIONS,
  });
  const rows = await callAgent(dataDirOf(values), 'GET /v1/registries', {});
  printListing(values, rows, {
    id: (r) => r.host,
    table: (kept) =>
      table(
        ['HOST', 'USER', 'ADDED', 'USED BY'],
        kept.map((r) => [r.host, r.username, ago(r.addedAt), r.services.join(', ') || '-']),
      ),
  });
  return 0;
}

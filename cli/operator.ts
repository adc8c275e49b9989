import { writeFile } from 'node:fs/promises';
import {
  DATA_DIR,
  dataDirOf,
  durationOf,
  JSON_OUTPUT,
  parse,
  runSubcommand,
  UsageError,
} from './args.js';
import { OPERATOR_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { LISTING_OPTIONS, printListing } from './listing.js';
import { ago, print, table } from './output.js';

/** `mesh operator add|ls|revoke`: the people who run this CLI from elsewhere. */
export function operator(args: string[]): Promise<number> {
  return runSubcommand('operator', args, { add, ls: list, revoke }, OPERATOR_COMMANDS);
}

async function add(args: string[]): Promise<number> {
  const { values, positionals } = parse('operator add', args, {
    ...DATA_DIR,
    expires: { type: 'string' },
    output: { type: 'string', short: 'o' },
  });
  const [name] = positionals;
  if (!name) throw new UsageError('operator add needs a NAME (lowercase letters, digits, - and _)');
  const expiresMs = durationOf(values.expires, '--expires');
  const context = await callAgent(dataDirOf(values), 'POST /v1/operators', {
    name,
    ...(expiresMs !== undefined && { expiresMs }),
  });
  const text = `${JSON.stringify(context, null, 2)}\n`;
  const file = values.output as string | undefined;
  // It holds a private key: a file of the owner's alone, or the terminal (redirect it to one).
  if (file) await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  else process.stdout.write(text);
  process.stderr.write(
    [
      `mesh: operator ${name} added${file ? `: its context is in ${file}` : ''}; keep it as a password is kept`,
      '  elsewhere: mesh --context FILE <command>, or MESH_CONTEXT=FILE',
      '',
    ].join('\n'),
  );
  return 0;
}

async function list(args: string[]): Promise<number> {
  const { values } = parse('operator ls', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    ...LISTING_OPTIONS,
  });
  const rows = await callAgent(dataDirOf(values), 'GET /v1/operators', {});
  printListing(values, rows, {
    id: (r) => r.name,
    table: (kept) =>
      table(
        ['NAME', 'STATE', 'EXPIRES', 'ADDED', 'BY'],
        kept.map((r) => [r.name, r.state, minuteOf(r.expires), ago(r.addedAt), r.addedBy]),
      ),
  });
  return 0;
}

async function revoke(args: string[]): Promise<number> {
  const { values, positionals } = parse('operator revoke', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [name] = positionals;
  if (!name) throw new UsageError('operator revoke needs a NAME; see "mesh operator ls"');
  const row = await callAgent(dataDirOf(values), 'POST /v1/operators/revoke', { name });
  print(
    Boolean(values.json),
    row,
    () => `mesh: operator ${row.name} revoked: every node refuses its certificate from now on`,
  );
  return 0;
}

/** An ISO time to the minute, as a table shows it: 2027-03-06 03:40 (UTC). */
function minuteOf(iso: string): string {
  return iso.replace('T', ' ').slice(0, 16);
}

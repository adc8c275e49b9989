import { readFileSync } from 'node:fs';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, runSubcommand, UsageError } from './args.js';
import { CERT_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { print, table } from './output.js';

export function cert(args: string[]): Promise<number> {
  return runSubcommand('cert', args, { add, ls: list, rm: remove }, CERT_COMMANDS);
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read the ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

async function add(args: string[]): Promise<number> {
  const { values, positionals } = parse('cert add', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [host, certFile, keyFile] = positionals;
  if (!host || !certFile || !keyFile)
    throw new UsageError('cert add needs HOST CERT KEY (PEM files)');
  const row = await callAgent(dataDirOf(values), 'POST /v1/certs', {
    host,
    certPem: readPem(certFile, 'certificate'),
    keyPem: readPem(keyFile, 'key'),
  });
  print(
    Boolean(values.json),
    row,
    () => `mesh: HTTPS for ${row.host} on every node (${row.subject}, until ${row.notAfter})`,
  );
  return 0;
}

async function list(args: string[]): Promise<number> {
  const { values } = parse('cert ls', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const rows = await callAgent(dataDirOf(values), 'GET /v1/certs', {});
  print(Boolean(values.json), rows, () =>
    table(
      ['HOST', 'SUBJECT', 'EXPIRES', 'ADDED'],
      rows.map((r) => [r.host, r.subject, r.notAfter, r.addedAt]),
    ),
  );
  return 0;
}

async function remove(args: string[]): Promise<number> {
  const { values, positionals } = parse('cert rm', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [host] = positionals;
  if (!host) throw new UsageError('cert rm needs a HOST');
  const result = await callAgent(dataDirOf(values), 'POST /v1/certs/rm', { host });
  print(
    Boolean(values.json),
    result,
    () => `mesh: no longer serving a certificate for ${result.host}`,
  );
  return 0;
}

import { readFileSync } from 'node:fs';
import type { ValueKind } from '../mesh/api/secrets.js';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, runSubcommand, UsageError } from './args.js';
import { valueCommands } from './commands.js';
import { callAgent } from './control-client.js';
import { ago, print, table } from './output.js';

/** `mesh secret ...` and `mesh config ...`: the same commands on two kinds of value. */
export function value(noun: 'secret' | 'config', args: string[]): Promise<number> {
  const kind: ValueKind = noun === 'secret' ? 'secrets' : 'configs';
  const command = (sub: string) => `${noun} ${sub}`;
  const options = { ...DATA_DIR, ...JSON_OUTPUT };

  /** The value from a file, or standard input ("-" or none). */
  const read = (file: string | undefined): string => {
    try {
      return readFileSync(file === undefined || file === '-' ? 0 : file).toString('base64');
    } catch (error) {
      throw new UsageError(
        `cannot read ${file ?? 'standard input'}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  };
  const named = (sub: string, positionals: string[]): string => {
    const [name] = positionals;
    if (!name) throw new UsageError(`${command(sub)} needs a NAME`);
    return name;
  };

  /** create and update: the value from a file or standard input, to the agent. */
  const store = (sub: 'create' | 'update') => async (rest: string[]) => {
    const { values, positionals } = parse(command(sub), rest, options);
    const body = { kind, name: named(sub, positionals), data: read(positionals[1]) };
    const dataDir = dataDirOf(values);
    if (sub === 'create') {
      const row = await callAgent(dataDir, 'POST /v1/values', body);
      print(Boolean(values.json), row, () => `mesh: ${noun} ${row.name} stored (version 1)`);
      return 0;
    }
    const row = await callAgent(dataDir, 'POST /v1/values/update', body);
    const latest = row.versions.at(-1)?.version;
    print(Boolean(values.json), row, () =>
      !row.changed
        ? `mesh: ${noun} ${row.name} unchanged (version ${latest} holds that value already)`
        : row.rolled.length > 0
          ? `mesh: ${noun} ${row.name} version ${latest}; rolling ${row.rolled.join(', ')} to it (see mesh ps)`
          : `mesh: ${noun} ${row.name} version ${latest}; no service uses it`,
    );
    return 0;
  };
  const list = async (rest: string[]) => {
    const { values } = parse(command('ls'), rest, options);
    const rows = await callAgent(dataDirOf(values), 'GET /v1/values', { kind });
    print(Boolean(values.json), rows, () =>
      table(
        ['NAME', 'VERSION', 'SIZE', 'UPDATED', 'USED BY'],
        rows.map((r) => {
          const latest = r.versions.at(-1);
          return [
            r.name,
            String(latest?.version ?? '-'),
            `${latest?.size ?? 0} B`,
            latest ? ago(latest.createdAt) : '-',
            r.services.map((s) => `${s.service} (v${s.version})`).join(', ') || '-',
          ];
        }),
      ),
    );
    return 0;
  };
  const inspect = async (rest: string[]) => {
    const { values, positionals } = parse(command('inspect'), rest, options);
    const row = await callAgent(dataDirOf(values), 'GET /v1/value', {
      kind,
      name: named('inspect', positionals),
    });
    print(Boolean(values.json), row, () =>
      [
        `${noun} ${row.name}`,
        ...row.versions.map((v) => `  version ${v.version}: ${v.size} B, ${v.createdAt}`),
        `  used by: ${row.services.map((s) => `${s.service} (version ${s.version})`).join(', ') || 'no service'}`,
      ].join('\n'),
    );
    return 0;
  };
  const remove = async (rest: string[]) => {
    const { values, positionals } = parse(command('rm'), rest, options);
    const result = await callAgent(dataDirOf(values), 'POST /v1/values/rm', {
      kind,
      name: named('rm', positionals),
    });
    print(Boolean(values.json), result, () => `mesh: ${noun} ${result.name} removed`);
    return 0;
  };
  return runSubcommand(
    noun,
    args,
    { create: store('create'), update: store('update'), ls: list, inspect, rm: remove },
    valueCommands(noun),
  );
}

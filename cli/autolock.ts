import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, runSubcommand, UsageError } from './args.js';
import { CLUSTER_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { print } from './output.js';

/** The unlock key from --key-file (its first line; "-": standard input), or asked for on a terminal. */
async function unlockKeyOf(values: Record<string, unknown>): Promise<string> {
  const path = values['key-file'] as string | undefined;
  if (path === undefined && process.stdin.isTTY) {
    const prompt = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await prompt.question('Unlock key: ');
    } finally {
      prompt.close();
    }
  }
  const text = await readFile(
    path === undefined || path === '-' ? '/dev/stdin' : path,
    'utf8',
  ).catch((error: Error) => {
    throw new UsageError(`--key-file: ${error.message}`);
  });
  return text.split('\n')[0] ?? '';
}

/** `mesh unlock [--key-file F]`: opens a locked manager's copy of the voters' key. */
export async function unlock(args: string[]): Promise<number> {
  const { values } = parse('unlock', args, { ...DATA_DIR, 'key-file': { type: 'string' } });
  await callAgent(dataDirOf(values), 'POST /v1/unlock', { key: await unlockKeyOf(values) });
  process.stdout.write('mesh: unlocked: this node opens secrets and signs again\n');
  return 0;
}

/** `mesh unlock-key [--rotate]`: prints the unlock key (a new one with --rotate). */
export async function unlockKey(args: string[]): Promise<number> {
  const { values } = parse('unlock-key', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    rotate: { type: 'boolean' },
  });
  const dataDir = dataDirOf(values);
  const { unlockKey: key } = values.rotate
    ? await callAgent(dataDir, 'POST /v1/unlock-key/rotate', {})
    : await callAgent(dataDir, 'GET /v1/unlock-key', {});
  if (values.rotate && !values.json)
    process.stderr.write('mesh: unlock key rotated; the one before opens nothing any more\n');
  print(Boolean(values.json), { unlockKey: key }, () => key);
  return 0;
}

/** `mesh cluster autolock on|off`. */
export function cluster(args: string[]): Promise<number> {
  return runSubcommand('cluster', args, { autolock: (rest) => autolock(rest) }, CLUSTER_COMMANDS);
}

async function autolock(args: string[]): Promise<number> {
  const { values, positionals } = parse('cluster autolock', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [turn] = positionals;
  if (turn !== 'on' && turn !== 'off') throw new UsageError('cluster autolock takes on or off');
  const answer = await callAgent(dataDirOf(values), 'POST /v1/autolock', { on: turn === 'on' });
  print(Boolean(values.json), answer, () =>
    answer.unlockKey
      ? `Autolock is on. Keep this unlock key safe: a manager that restarts stays locked until "mesh unlock" is given it:\n  ${answer.unlockKey}`
      : 'Autolock is off: the voters’ key is kept in plain files again.',
  );
  return 0;
}

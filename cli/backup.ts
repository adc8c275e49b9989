import { readFile } from 'node:fs/promises';
import { writeAtomic } from '../agent/datadir.js';
import type { Restore } from '../agent/identity/restore.js';
import type { NetworkSettings } from '../mesh/api/network.js';
import { type BackupFile, openBackup, parseBackup, settingIn } from '../mesh/state/backup.js';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, type Options, parse, UsageError } from './args.js';
import { callAgent } from './control-client.js';
import { plural, print } from './output.js';

/** `mesh init` flags that restore a backup. */
export const RESTORE_FLAGS: Options = {
  restore: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'voters-key': { type: 'string' },
  'keep-ca': { type: 'boolean' },
};

/** --passphrase-file FILE ("-": standard input); its first line is the passphrase. */
async function passphraseOf(values: Record<string, unknown>): Promise<string | undefined> {
  const path = values['passphrase-file'] as string | undefined;
  if (path === undefined) return undefined;
  const text = await readFile(path === '-' ? '/dev/stdin' : path, 'utf8').catch((error: Error) => {
    throw new UsageError(`--passphrase-file: ${error.message}`);
  });
  return text.split('\n')[0] ?? '';
}

/** What a backup holds, in words. */
function describe(file: BackupFile): string {
  const count = (kind: keyof BackupFile['counts'], noun: string) =>
    plural(file.counts[kind] ?? 0, noun);
  const sealedWith =
    file.encryption.method === 'passphrase'
      ? 'a passphrase (scrypt, AES-256-GCM)'
      : `the voters' key ${file.encryption.keyId} (AES-256-GCM; restoring needs pki/secrets.key of a voter)`;
  return [
    `cluster ${file.clusterId} at index ${file.index}, ${file.createdAt}:`,
    `${count('stacks', 'stack')}, ${count('services', 'service')}, ${count('secrets', 'secret')}, ${count('configs', 'config')}, ${count('certificates', 'certificate')};`,
    `encrypted with ${sealedWith}`,
  ].join(' ');
}

/** `mesh backup FILE [--passphrase-file F]`: a consistent snapshot of the cluster state. */
export async function backup(args: string[]): Promise<number> {
  const { values, positionals } = parse('backup', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    'passphrase-file': { type: 'string' },
  });
  const [path] = positionals;
  if (!path || positionals.length > 1)
    throw new UsageError('backup takes the file to write: mesh backup FILE [--passphrase-file F]');
  const passphrase = await passphraseOf(values);
  const file = await callAgent(dataDirOf(values), 'POST /v1/backup', {
    ...(passphrase !== undefined && { passphrase }),
  });
  await writeAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  const { sealed: _sealed, ...header } = file;
  print(
    Boolean(values.json),
    { file: path, ...header },
    () => `mesh: wrote ${path}: ${describe(file)}`,
  );
  return 0;
}

/**
 * `mesh init --restore FILE`: the backup opened with its passphrase or the voters' key, before
 * anything is written; the ranges are the backup's (its service addresses are in them).
 */
export async function restoreOf(
  values: Record<string, unknown>,
  network: NetworkSettings,
  explicitRanges: boolean,
): Promise<Restore | undefined> {
  const path = values.restore as string | undefined;
  if (path === undefined) {
    for (const flag of ['passphrase-file', 'voters-key', 'keep-ca'])
      if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --restore FILE`);
    return undefined;
  }
  const text = await readFile(path, 'utf8').catch((error: Error) => {
    throw new UsageError(`--restore: ${error.message}`);
  });
  const file = parseBackup(text, path);
  const keyPath = values['voters-key'] as string | undefined;
  const givenKey =
    keyPath === undefined
      ? undefined
      : Buffer.from(
          (
            await readFile(keyPath, 'utf8').catch((error: Error) => {
              throw new UsageError(`--voters-key: ${error.message}`);
            })
          ).trim(),
          'hex',
        );
  const contents = openBackup(file, path, {
    passphrase: await passphraseOf(values),
    votersKey: givenKey,
  });
  const votersKey = contents.votersKey ? Buffer.from(contents.votersKey, 'hex') : givenKey;
  if (!votersKey) throw new UsageError(`${path}: holds no voters' key; give one with --voters-key`);
  const stored = settingIn<NetworkSettings>(contents.objects, 'network');
  if (
    explicitRanges &&
    stored &&
    (stored.serviceRange !== network.serviceRange || stored.bridgeRange !== network.bridgeRange)
  )
    throw new UsageError(
      `--restore: the backup's cluster uses service range ${stored.serviceRange} and bridge range ${stored.bridgeRange} (its service addresses are in them); leave out --service-range and --bridge-range`,
    );
  process.stdout.write(`mesh: restoring ${describe(file)}\n`);
  return { contents, votersKey, keepCa: values['keep-ca'] === true };
}

/**
 * Backups of the cluster state: `mesh backup FILE` writes one, `mesh init --restore FILE` starts a
 * new cluster from it. The file is JSON with a readable header (which cluster, when, what it holds,
 * how it is encrypted) and the contents sealed with AES-256-GCM: either with a key derived from a
 * passphrase (scrypt; the voters' key is then inside, so the backup alone restores secrets), or
 * with the cluster's voters' key itself (restoring then needs that key, from a voter's data dir).
 * Secrets and configs stay sealed with the cluster's data key inside either way.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import type { Sealed } from '../api/secrets.js';
import { keyId, open, SealError, seal } from '../secrets/sealing.js';
import { UserError } from '../user-error.js';
import { ClusterState, type StoredObject } from './cluster-state.js';
import { KINDS, type Kind } from './kinds.js';

export const BACKUP_FORMAT = 'mesh-backup/1';

/** How the contents are sealed: a passphrase's key, or the cluster's voters' key. */
export type BackupEncryption =
  | { method: 'passphrase'; kdf: 'scrypt'; salt: string; N: number; r: number; p: number }
  | { method: 'voters-key'; keyId: string };

export interface BackupFile {
  format: typeof BACKUP_FORMAT;
  clusterId: string;
  createdAt: string;
  /** The Raft index the snapshot was read at (a ReadIndex read: everything committed before). */
  index: number;
  /** How many objects of each kind it holds, readable without opening it. */
  counts: Partial<Record<Kind, number>>;
  encryption: BackupEncryption;
  sealed: Sealed;
}

/** What the sealed part holds. */
export interface BackupContents {
  clusterId: string;
  objects: Array<[Kind, StoredObject[]]>;
  /** With a passphrase only: the voters' key (hex), which opens the CA and the secrets' data key. */
  votersKey?: string;
}

export class BackupError extends UserError {
  override name = 'BackupError';
}

// scrypt at 2^15: about 100 ms and 32 MiB here, once per backup or restore.
const SCRYPT = { N: 1 << 15, r: 8, p: 1 };
const SCRYPT_MAX_MEMORY = 64 * 1024 * 1024;
/** Shorter passphrases are refused: the file may travel, and scrypt only slows guessing down. */
export const MIN_PASSPHRASE_LENGTH = 12;

function passphraseKey(
  passphrase: string,
  encryption: BackupEncryption & { method: 'passphrase' },
) {
  return scryptSync(passphrase, Buffer.from(encryption.salt, 'base64'), 32, {
    N: encryption.N,
    r: encryption.r,
    p: encryption.p,
    maxmem: SCRYPT_MAX_MEMORY,
  });
}

/** Seals a backup; `with` is a passphrase, or the voters' key itself. */
export function sealBackup(
  contents: BackupContents,
  meta: { createdAt: string; index: number },
  secret: { passphrase: string } | { votersKey: Buffer },
): BackupFile {
  let encryption: BackupEncryption;
  let key: Buffer;
  if ('passphrase' in secret) {
    if (secret.passphrase.length < MIN_PASSPHRASE_LENGTH)
      throw new BackupError(`the passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
    encryption = {
      method: 'passphrase',
      kdf: 'scrypt',
      salt: randomBytes(16).toString('base64'),
      ...SCRYPT,
    };
    key = passphraseKey(secret.passphrase, encryption);
  } else {
    encryption = { method: 'voters-key', keyId: keyId(secret.votersKey) };
    key = secret.votersKey;
    if (contents.votersKey)
      throw new BackupError('a backup sealed with the voters’ key cannot hold it');
  }
  const counts = Object.fromEntries(
    contents.objects
      .filter(([, list]) => list.length > 0)
      .map(([kind, list]) => [kind, list.length]),
  );
  return {
    format: BACKUP_FORMAT,
    clusterId: contents.clusterId,
    ...meta,
    counts,
    encryption,
    sealed: seal(key, Buffer.from(JSON.stringify(contents))),
  };
}

/** Reads a backup file's text: its header, checked, without opening it. */
export function parseBackup(text: string, source: string): BackupFile {
  let file: Partial<BackupFile>;
  try {
    file = JSON.parse(text) as Partial<BackupFile>;
  } catch (error) {
    throw new BackupError(`${source} is not a mesh backup: ${(error as Error).message}`);
  }
  if (file?.format !== BACKUP_FORMAT)
    throw new BackupError(
      `${source} is not a mesh backup (format ${JSON.stringify(file?.format)}, expected ${BACKUP_FORMAT})`,
    );
  const method = file.encryption?.method;
  if (method !== 'passphrase' && method !== 'voters-key')
    throw new BackupError(`${source}: unknown encryption ${JSON.stringify(method)}`);
  if (typeof file.clusterId !== 'string' || !file.sealed)
    throw new BackupError(`${source}: the header lacks clusterId or the sealed contents`);
  return file as BackupFile;
}

/** Opens a backup with what its header asks for, and checks every object it holds. */
export function openBackup(
  file: BackupFile,
  source: string,
  secret: { passphrase?: string; votersKey?: Buffer },
): BackupContents {
  let key: Buffer;
  const { encryption } = file;
  if (encryption.method === 'passphrase') {
    if (secret.passphrase === undefined)
      throw new BackupError(
        `${source} is encrypted with a passphrase: give it with --passphrase-file`,
      );
    key = passphraseKey(secret.passphrase, encryption);
  } else {
    if (!secret.votersKey)
      throw new BackupError(
        `${source} is encrypted with the voters' key of cluster ${file.clusterId} (ID ${encryption.keyId}): give pki/secrets.key of one of its voters with --voters-key`,
      );
    if (keyId(secret.votersKey) !== encryption.keyId)
      throw new BackupError(
        `${source} is sealed with voters' key ${encryption.keyId}; the key given is ${keyId(secret.votersKey)}`,
      );
    key = secret.votersKey;
  }
  let contents: BackupContents;
  try {
    contents = JSON.parse(open(key, file.sealed).toString()) as BackupContents;
  } catch (error) {
    if (error instanceof SealError)
      throw new BackupError(
        `${source} does not open: ${encryption.method === 'passphrase' ? 'wrong passphrase' : 'wrong key'}, or the file was changed`,
      );
    throw error;
  }
  const scratch = new ClusterState();
  scratch.restore({ appliedIndex: 0, objects: contents.objects });
  const damaged = KINDS.flatMap((kind) => scratch.damaged(kind));
  if (damaged.length > 0)
    throw new BackupError(
      `${source} holds objects that fail their checks: ${damaged.map((d) => `${d.kind}/${d.id}: ${d.reason}`).join('; ')}`,
    );
  return contents;
}

/**
 * What a new cluster takes from a backup: desired state (stacks, services, secrets, configs,
 * service addresses, ingress certificates, settings), not what belonged to the old machines
 * (nodes, tasks and their statuses, volumes pinned to old nodes) nor, unless kept, the old CA.
 */
const NOT_RESTORED: ReadonlySet<Kind> = new Set(['nodes', 'tasks', 'statuses', 'volumes']);

export function restoredObjects(
  contents: BackupContents,
  keepCa: boolean,
): Array<[Kind, StoredObject[]]> {
  return contents.objects
    .filter(([kind]) => KINDS.includes(kind) && !NOT_RESTORED.has(kind))
    .map(([kind, list]) => [
      kind,
      kind === 'settings' && !keepCa ? list.filter((o) => o.id !== 'ca') : list,
    ]);
}

/** A setting a backup holds (settings/<id>), by its ID. */
export function settingIn<T>(objects: BackupContents['objects'], id: string): T | undefined {
  return objects.find(([kind]) => kind === 'settings')?.[1].find((o) => o.id === id)?.value as
    | T
    | undefined;
}

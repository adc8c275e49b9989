import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSealed, type Sealed } from '../../mesh/api/secrets.js';
import { KEY_BYTES, keyId, open, SealError, seal } from '../../mesh/secrets/sealing.js';
import { readIfPresent, writeAtomic } from '../datadir.js';
import { ForbiddenError, InvalidError } from '../errors.js';

/** How an unlock key is written for a person: a prefix that says what it is, then base64url. */
const UNLOCK_PREFIX = 'MESH-UNLOCK-1-';

/** Where a node keeps the voters' key (owner-only): in plain text, or wrapped (autolock). */
export function votersKeyPath(dataDir: string): string {
  return join(dataDir, 'pki', 'secrets.key');
}

const lockedPath = (dataDir: string) => `${votersKeyPath(dataDir)}.locked`;

/** Whether the data dir holds the voters' key, plain or wrapped. */
export function holdsVotersKey(dataDir: string): boolean {
  return existsSync(votersKeyPath(dataDir)) || existsSync(lockedPath(dataDir));
}

/** This node holds the voters' key wrapped with an unlock key it has not been given since it started. */
export class LockedError extends ForbiddenError {
  override name = 'LockedError';
}

export function encodeUnlockKey(key: Buffer): string {
  return `${UNLOCK_PREFIX}${key.toString('base64url')}`;
}

export function decodeUnlockKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = trimmed.startsWith(UNLOCK_PREFIX)
    ? Buffer.from(trimmed.slice(UNLOCK_PREFIX.length), 'base64url')
    : Buffer.alloc(0);
  if (key.length !== KEY_BYTES)
    throw new InvalidError(
      `an unlock key looks like ${UNLOCK_PREFIX}… (as mesh unlock-key prints it)`,
    );
  return key;
}

interface LockedFile {
  /** The ID of the unlock key that wraps it. */
  unlockKeyId: string;
  sealed: Sealed;
}

/**
 * The voters' key in this node's data dir. Without autolock it is a file of its own, readable by
 * the agent's user only; with autolock it is wrapped with the cluster's unlock key, which no disk
 * holds: an agent that starts again keeps it locked (it signs nothing and opens no secret) until
 * `mesh unlock` gives it the unlock key, so a copy of the data dir opens nothing.
 */
export class VotersKeyFile {
  private key: Buffer | undefined;
  /** The unlock key, in memory only: given by mesh unlock, by a voter handing the key over, or at init. */
  private unlockKey: Buffer | undefined;

  constructor(
    private readonly dataDir: string,
    unlockKey?: Buffer,
  ) {
    this.unlockKey = unlockKey;
  }

  /** Whether autolock wraps the key here, and whether this run has opened it. */
  async lock(): Promise<'off' | 'locked' | 'unlocked'> {
    if (!(await readIfPresent(lockedPath(this.dataDir))))
      return this.unlockKey ? 'unlocked' : 'off';
    return this.key ? 'unlocked' : 'locked';
  }

  /** The unlock key, on a node that was given it (to hand on with the voters' key, or to print). */
  get currentUnlockKey(): Buffer | undefined {
    return this.unlockKey;
  }

  /** The voters' key, or undefined when this node holds none; LockedError while it is locked. */
  async read(): Promise<Buffer | undefined> {
    if (this.key) return this.key;
    const locked = await this.readLocked();
    if (locked) {
      if (!this.unlockKey)
        throw new LockedError(
          'this node is locked (autolock): it opens no secret and signs nothing until "mesh unlock"',
        );
      this.key = this.openLocked(locked, this.unlockKey);
      return this.key;
    }
    const text = await readIfPresent(votersKeyPath(this.dataDir));
    if (text === undefined) return undefined;
    const key = Buffer.from(text.trim(), 'hex');
    if (key.length !== KEY_BYTES)
      throw new Error(`${votersKeyPath(this.dataDir)} is damaged: not a ${KEY_BYTES}-byte key`);
    this.key = key;
    return key;
  }

  /** Keeps the key: wrapped when this node knows an unlock key, else in plain text. */
  async write(key: Buffer): Promise<void> {
    const path = votersKeyPath(this.dataDir);
    if (this.unlockKey) {
      const file: LockedFile = {
        unlockKeyId: keyId(this.unlockKey),
        sealed: seal(this.unlockKey, key),
      };
      await writeAtomic(lockedPath(this.dataDir), `${JSON.stringify(file)}\n`, 0o600);
      await rm(path, { force: true });
    } else {
      await writeAtomic(path, `${key.toString('hex')}\n`, 0o600);
      await rm(lockedPath(this.dataDir), { force: true });
    }
    this.key = key;
  }

  /** `mesh unlock`: opens the wrapped key with the unlock key, or refuses saying why. */
  async unlock(unlockKey: Buffer): Promise<Buffer> {
    const locked = await this.readLocked();
    if (!locked) throw new InvalidError('this node is not locked: it holds no wrapped voters’ key');
    this.key = this.openLocked(locked, unlockKey);
    this.unlockKey = unlockKey;
    return this.key;
  }

  /**
   * Autolock turned on, off or given a new unlock key: the key is written again under it (or in
   * plain text). Refused while locked: the key cannot be read to be wrapped again.
   */
  async rewrap(unlockKey: Buffer | undefined): Promise<void> {
    const key = await this.read();
    this.unlockKey = unlockKey;
    if (key) await this.write(key);
  }

  /** Given with the voters' key by the voter that handed it over: the cluster is autolocked. */
  adoptUnlockKey(unlockKey: Buffer | undefined): void {
    this.unlockKey = unlockKey;
  }

  async remove(): Promise<void> {
    this.key = undefined;
    await rm(votersKeyPath(this.dataDir), { force: true });
    await rm(lockedPath(this.dataDir), { force: true });
  }

  private async readLocked(): Promise<LockedFile | undefined> {
    const path = lockedPath(this.dataDir);
    const text = await readIfPresent(path);
    if (text === undefined) return undefined;
    let file: LockedFile;
    try {
      file = JSON.parse(text) as LockedFile;
    } catch (error) {
      throw new Error(`${path} is damaged: ${(error as Error).message}`);
    }
    if (typeof file?.unlockKeyId !== 'string' || checkSealed(file.sealed, 'sealed'))
      throw new Error(`${path} is damaged: not a wrapped key`);
    return file;
  }

  private openLocked(file: LockedFile, unlockKey: Buffer): Buffer {
    if (file.unlockKeyId !== keyId(unlockKey))
      throw new InvalidError(
        'that is not the unlock key of this node’s voters’ key (it was rotated? use the one mesh unlock-key printed last)',
      );
    try {
      return open(unlockKey, file.sealed);
    } catch (error) {
      if (error instanceof SealError)
        throw new Error(`${lockedPath(this.dataDir)} is damaged: ${error.message}`);
      throw error;
    }
  }
}

/**
 * Sealing: AES-256-GCM from node:crypto, a fresh 96-bit IV per value. The tag makes a value that
 * was changed, or sealed with another key, fail to open rather than open wrong.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Sealed } from '../api/secrets.js';

export const KEY_BYTES = 32;

export class SealError extends Error {
  override name = 'SealError';
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** A key's public name: which key sealed something, without saying anything of the key. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('mesh key id').update(key).digest('hex').slice(0, 16);
}

export function seal(key: Buffer, plain: Buffer): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    iv: iv.toString('base64'),
    data: data.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

export function open(key: Buffer, sealed: Sealed): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]);
  } catch (error) {
    throw new SealError(
      `cannot open a sealed value (changed, or sealed with another key): ${(error as Error).message}`,
    );
  }
}

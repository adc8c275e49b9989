/**
 * Secrets and configs: named values a stack's services read as files. Stored only sealed
 * (AES-256-GCM with the cluster data key, itself sealed with the voters' key), a few versions
 * each; a service names the version it runs.
 */
import { type Check, integer, listOf, mapOf, object, string } from './schema.js';

/** Swarm's names for secrets and configs: letters, digits, `_`, `.` and `-`. */
export function isValidValueName(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(value);
}

const validName: Check = (value, path) =>
  isValidValueName(value) ? undefined : `${path} must be letters, digits, _, . and - (64 at most)`;

/** A value sealed with AES-256-GCM: each part base64. */
export interface Sealed {
  iv: string;
  data: string;
  tag: string;
}

export interface SecretVersion {
  version: number;
  sealed: Sealed;
  /** Bytes of the plain value. */
  size: number;
  createdAt: string;
}

/** secrets/<name> and configs/<name>. */
export interface SecretRecord {
  name: string;
  /** The latest few, oldest first. */
  versions: SecretVersion[];
  labels: Record<string, string>;
}

/** How many versions of a value are kept: a service still running an older one can start it. */
export const KEPT_VERSIONS = 5;

/** settings/secrets-key: the cluster data key, sealed with the voters' key (named by its ID). */
export interface SecretsKeySetting {
  keyId: string;
  sealed: Sealed;
}

/** A service's use of a secret or config: which version, where, and as whom. */
export interface FileRef {
  source: string;
  version: number;
  /** An absolute path in the container. */
  target: string;
  uid: string;
  gid: string;
  /** File mode, as a number (0o444 by default). */
  mode: number;
}

export type ValueKind = 'secrets' | 'configs';

/** Where a secret goes unless its reference says: /run/secrets/<name> (configs: /<name>). */
export function defaultTarget(kind: ValueKind, source: string): string {
  return kind === 'secrets' ? `/run/secrets/${source}` : `/${source}`;
}

const base64 = (value: unknown, path: string) =>
  typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value)
    ? undefined
    : `${path} must be base64`;

export const checkSealed: Check = object({ required: { iv: base64, data: base64, tag: base64 } });

export const checkSecret: Check = object({
  required: {
    name: validName,
    versions: listOf(
      object({
        required: {
          version: integer(1),
          sealed: checkSealed,
          size: integer(0),
          createdAt: string,
        },
      }),
    ),
    labels: mapOf(string),
  },
});

export const checkSecretsKey: Check = object({ required: { keyId: string, sealed: checkSealed } });

/**
 * settings/autolock, present while autolock is on: every copy of the voters' key on a disk is
 * wrapped with an unlock key the operator keeps (its ID only is stored here).
 */
export interface AutolockSetting {
  unlockKeyId: string;
  since: string;
}

export const checkAutolock: Check = object({ required: { unlockKeyId: string, since: string } });

export const checkFileRef: Check = object({
  required: {
    source: validName,
    version: integer(1),
    target: (value, path) =>
      typeof value === 'string' && value.startsWith('/') ? undefined : `${path} must be a path`,
    uid: string,
    gid: string,
    mode: integer(0),
  },
});

/**
 * settings/ca: the cluster CA and the join secret, for every voter and no other node: the CA's
 * certificate in the clear, its key and the secret sealed with the voters' key (named by its ID).
 */
import { type Check, integer, listOf, object, string } from './schema.js';
import { checkSealed, type Sealed } from './secrets.js';

export interface AuthoritySetting {
  certPem: string;
  keyId: string;
  sealedKey: Sealed;
  sealedSecret: Sealed;
  /** The join secret of worker tokens (`mesh token --worker`), once one was asked for. */
  sealedWorkerSecret?: Sealed;
  /** When the secrets last changed (a rotation, a worker secret made): caches follow it. */
  rotatedAt: string;
  /** How long node certificates last; absent: 90 days. */
  certValidityMs?: number;
  /**
   * `mesh ca rotate` under way: the next CA (its key sealed like the current one's), trusted by
   * every node beside the current one, and its certificate cross-signed by the current CA. Nodes
   * renew under it; once every live node has, it becomes the current CA.
   */
  next?: NextAuthority;
  /** CAs retired by rotations: a node they certified may still come back as itself with a token. */
  retired?: string[];
}

export interface NextAuthority {
  certPem: string;
  crossPem: string;
  sealedKey: Sealed;
  startedAt: string;
}

export const checkAuthority: Check = object({
  required: {
    certPem: string,
    keyId: string,
    sealedKey: checkSealed,
    sealedSecret: checkSealed,
    rotatedAt: string,
  },
  optional: {
    sealedWorkerSecret: checkSealed,
    certValidityMs: integer(1000),
    next: object({
      required: { certPem: string, crossPem: string, sealedKey: checkSealed, startedAt: string },
    }),
    retired: listOf(string),
  },
});

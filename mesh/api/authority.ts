/**
 * settings/ca: the cluster CA and the join secret, for every voter and no other node: the CA's
 * certificate in the clear, its key and the secret sealed with the voters' key (named by its ID).
 */
import { type Check, integer, object, string } from './schema.js';
import { checkSealed, type Sealed } from './secrets.js';

export interface AuthoritySetting {
  certPem: string;
  keyId: string;
  sealedKey: Sealed;
  sealedSecret: Sealed;
  rotatedAt: string;
  /** How long node certificates last; absent: 90 days. */
  certValidityMs?: number;
}

export const checkAuthority: Check = object({
  required: {
    certPem: string,
    keyId: string,
    sealedKey: checkSealed,
    sealedSecret: checkSealed,
    rotatedAt: string,
  },
  optional: { certValidityMs: integer(1000) },
});

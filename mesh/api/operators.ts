/**
 * Operators (`mesh operator add|ls|revoke`): people who run the CLI from elsewhere, each with a
 * certificate of the cluster CA in the operator role. A certificate is honoured only while its
 * serial is the one recorded here for its name, unrevoked and unexpired.
 */
import { type Check, integer, object, string } from './schema.js';

/** operators/<name> */
export interface OperatorRecord {
  name: string;
  /** The serial of the certificate issued (normalized hex). */
  serial: string;
  /** When it expires (ms since the epoch). */
  notAfter: number;
  addedAt: string;
  /** The node whose CLI added it. */
  addedBy: string;
  /** Set by `mesh operator revoke`: refused from then on, on every node. */
  revokedAt?: string;
}

export const checkOperator: Check = object({
  required: {
    name: string,
    serial: string,
    notAfter: integer(0),
    addedAt: string,
    addedBy: string,
  },
  optional: { revokedAt: string },
});

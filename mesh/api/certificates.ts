/** TLS certificates the HTTP ingress serves, chosen by SNI: `mesh cert add|ls|rm`. */
import { type Check, object, string } from './schema.js';
import { checkSealed, type Sealed } from './secrets.js';

/** certificates/<host> */
export interface CertificateRecord {
  /** The host name it is chosen for (a wildcard `*.example.com` covers one label). */
  host: string;
  /** The certificate and its chain, PEM. */
  certPem: string;
  /** Its private key (PEM), sealed with the cluster data key as secrets are. */
  sealedKey?: Sealed;
  /**
   * The key as given, in a record written before keys were sealed: the leader seals it (and
   * drops this) once it sees it.
   */
  keyPem?: string;
  /** When it expires (ISO 8601), for `mesh cert ls`. */
  notAfter: string;
  subject: string;
  addedAt: string;
}

const fields: Check = object({
  required: { host: string, certPem: string, notAfter: string, subject: string, addedAt: string },
  optional: { sealedKey: checkSealed, keyPem: string },
});

export const checkCertificate: Check = (value, path) =>
  fields(value, path) ??
  ((value as CertificateRecord).sealedKey || (value as CertificateRecord).keyPem
    ? undefined
    : `${path}.sealedKey is missing`);

/** The certificate for a server name: its own, or a wildcard one level up. */
export function certificateFor<T>(
  byHost: ReadonlyMap<string, T>,
  serverName: string,
): T | undefined {
  const name = serverName.toLowerCase();
  const exact = byHost.get(name);
  if (exact) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? byHost.get(`*${name.slice(dot)}`) : undefined;
}

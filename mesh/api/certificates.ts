/** TLS certificates the HTTP ingress serves, chosen by SNI: `mesh cert add|ls|rm`. */
import { type Check, object, string } from './schema.js';

/** certificates/<host> */
export interface CertificateRecord {
  /** The host name it is chosen for (a wildcard `*.example.com` covers one label). */
  host: string;
  /** The certificate and its chain, PEM. */
  certPem: string;
  /**
   * Its private key, PEM. Kept in the replicated state as given until secrets have their
   * cluster data key; then encrypted at rest with it.
   */
  keyPem: string;
  /** When it expires (ISO 8601), for `mesh cert ls`. */
  notAfter: string;
  subject: string;
  addedAt: string;
}

export const checkCertificate: Check = object({
  required: {
    host: string,
    certPem: string,
    keyPem: string,
    notAfter: string,
    subject: string,
    addedAt: string,
  },
});

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

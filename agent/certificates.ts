import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CertificateRecord } from '../mesh/api/certificates.js';
import type { CertificateRow, Untrusted } from './control-api.js';
import { InvalidError, NotFoundError } from './errors.js';
import type { StateAccess } from './state-access.js';

/** A host name, or a wildcard one level deep (*.example.com). */
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

function rowOf(record: CertificateRecord): CertificateRow {
  const { keyPem: _key, certPem: _cert, ...row } = record;
  return row;
}

/**
 * `mesh cert add|ls|rm`: the certificates the HTTPS ingress chooses by SNI. A certificate is
 * checked before it is stored: it parses, its key is its own, it covers the host and has not
 * expired. Listings never include a key.
 */
export class Certificates {
  constructor(private readonly access: StateAccess) {}

  async add(
    request: Untrusted<{ host: string; certPem: string; keyPem: string }>,
  ): Promise<CertificateRow> {
    const host = String(request.host ?? '').toLowerCase();
    if (!HOST.test(host)) throw new InvalidError(`"${host}" is not a host name (or *.domain)`);
    const certPem = String(request.certPem ?? '');
    const keyPem = String(request.keyPem ?? '');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (error) {
      throw new InvalidError(
        `the certificate is not a PEM X.509 certificate: ${(error as Error).message}`,
      );
    }
    try {
      if (!cert.checkPrivateKey(createPrivateKey(keyPem)))
        throw new InvalidError('the key is not the key of this certificate');
    } catch (error) {
      if (error instanceof InvalidError) throw error;
      throw new InvalidError(`the key is not a PEM private key: ${(error as Error).message}`);
    }
    const name = host.startsWith('*.') ? `x${host.slice(1)}` : host;
    if (!cert.checkHost(name))
      throw new InvalidError(
        `the certificate (${cert.subject.replace(/\n/g, ', ')}; ${cert.subjectAltName ?? 'no alternative names'}) does not cover ${host}`,
      );
    const notAfter = new Date(cert.validTo);
    if (notAfter.getTime() < Date.now())
      throw new InvalidError(`the certificate expired on ${notAfter.toISOString()}`);
    const record: CertificateRecord = {
      host,
      certPem,
      keyPem,
      notAfter: notAfter.toISOString(),
      subject: cert.subject.replace(/\n/g, ', '),
      addedAt: new Date().toISOString(),
    };
    await this.access.writeConditionally(() => [
      { op: 'put', kind: 'certificates', id: host, value: record },
    ]);
    return rowOf(record);
  }

  list(): CertificateRow[] {
    return this.access.state
      .list<CertificateRecord>('certificates')
      .map((c) => rowOf(c.value))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  async remove(hostText: unknown): Promise<{ host: string }> {
    const host = String(hostText ?? '').toLowerCase();
    const stored = this.access.state.get('certificates', host);
    if (!stored) throw new NotFoundError(`no certificate for ${host}`);
    await this.access.writeConditionally(() =>
      this.access.state.get('certificates', host)
        ? [{ op: 'delete', kind: 'certificates', id: host }]
        : [],
    );
    return { host };
  }
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CertificateRecord } from '../../mesh/api/certificates.js';
import type { CertificateRow, Untrusted } from '../control/api.js';
import { InvalidError, NotFoundError } from '../errors.js';
import { repeatOneAtATime } from '../repeat.js';
import { askVoters, type SealedStoreParts } from './ask-voters.js';
import type { StateAccess } from './state-access.js';

const OPEN_KEY = 'certificates.key';
// How often the leader looks for keys stored before keys were sealed.
const SEAL_CHECK_MS = 5000;

/** A certificate and its key, opened: what a node's HTTPS listener serves for a host. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** A host name, or a wildcard one level deep (*.example.com). */
const HOST = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

function rowOf({ host, subject, notAfter, addedAt }: CertificateRecord): CertificateRow {
  return { host, subject, notAfter, addedAt };
}

/**
 * `mesh cert add|ls|rm`: the certificates the HTTPS ingress chooses by SNI. A certificate is
 * checked before it is stored: it parses, its key is its own, it covers the host and has not
 * expired. Its key is stored sealed with the cluster data key, as secrets are; every node serves
 * HTTPS, so any node of the cluster may have it opened by a voter (over mTLS) and keeps it in
 * memory only. Listings never include a key.
 */
export class Certificates {
  private stopSealing: (() => void) | undefined;

  constructor(private readonly options: SealedStoreParts) {
    options.transport.handle(OPEN_KEY, (body, from) =>
      this.serveKey(String((body as { host?: unknown }).host), from.nodeId),
    );
  }

  private get access(): StateAccess {
    return this.options.access;
  }

  /** On the leader: seals keys stored before keys were sealed. */
  start(): void {
    this.stopSealing = repeatOneAtATime(
      SEAL_CHECK_MS,
      () => this.sealPlainKeys(),
      (error) =>
        this.options.log.warn({ reason: error.message }, 'could not seal certificate keys'),
    );
  }

  stop(): void {
    this.stopSealing?.();
  }

  async add(
    request: Untrusted<{ host: string; certPem: string; keyPem: string }>,
  ): Promise<CertificateRow> {
    // Only a manager changes certificates, and only a voter seals: say which nodes to ask.
    this.access.requireManager();
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
      sealedKey: await this.options.keyring.seal(Buffer.from(keyPem)),
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
      .list('certificates')
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

  /** The certificate for a host and its key, for this node's HTTPS listener. */
  async keyPair(host: string): Promise<KeyPair> {
    const { raft, nodeId, transport } = this.options;
    if (raft.membership.voters.includes(nodeId)) return this.open(host);
    return askVoters<KeyPair>(
      { raft, state: this.access.state, transport },
      OPEN_KEY,
      { host },
      `opened the key of ${host}`,
    );
  }

  private async serveKey(host: string, asker: string): Promise<KeyPair> {
    const pair = await this.open(host);
    this.options.log.debug({ host, asker }, 'opened a certificate key for a node');
    return pair;
  }

  /** On a voter: the stored certificate for a host, its key opened. */
  private async open(host: string): Promise<KeyPair> {
    const record = this.access.state.get('certificates', host)?.value;
    if (!record) throw new NotFoundError(`no certificate for ${host}`);
    const keyPem = record.sealedKey
      ? (await this.options.keyring.open(record.sealedKey)).toString()
      : record.keyPem;
    if (!keyPem) throw new Error(`the certificate for ${host} has no key`);
    return { certPem: record.certPem, keyPem };
  }

  private async sealPlainKeys(): Promise<void> {
    if (this.options.raft.raft.role !== 'leader') return;
    for (const { id, value } of this.access.state.list('certificates')) {
      if (value.keyPem === undefined) continue;
      const { keyPem, ...rest } = value;
      const sealedKey = await this.options.keyring.seal(Buffer.from(keyPem));
      await this.access.writeConditionally(() => {
        const now = this.access.state.get('certificates', id);
        // Replaced or removed meanwhile: that write decided.
        if (now?.value.keyPem !== keyPem) return [];
        return [
          {
            op: 'put',
            kind: 'certificates',
            id,
            value: { ...rest, sealedKey },
            ifVersion: now.version,
          },
        ];
      });
      this.options.log.info(
        { host: id },
        'sealed a certificate key stored before keys were sealed',
      );
    }
  }
}

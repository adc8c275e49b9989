import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import {
  certificatePin,
  normalizeSerial,
  ROLE_CA,
  ROLE_NODE,
  ROLE_OPERATOR,
} from './certificate.js';
import { generateKeyPair, rsaSigner } from './keys.js';

const DAY_MS = 24 * 60 * 60 * 1000;
export const NODE_CERT_VALID_DAYS = 90;
const CA_CERT_VALID_DAYS = 10 * 365;

export interface IssueOptions {
  nodeId: string;
  publicKeyPem: string;
  /** Defaults to now; tests move it to mint certificates that are already expired. */
  validFrom?: Date;
  validDays?: number;
  /** A serial the cluster recorded (normalized hex), to issue a certificate again under it. */
  serial?: string;
  /** An operator's certificate (a client only; CN is the operator's name) instead of a node's. */
  operator?: boolean;
}

export interface IssuedCertificate {
  certPem: string;
  serial: string;
}

/** A positive 128-bit serial: the top bit is cleared so DER never reads it as negative. */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** A normalized serial as DER wants it: whole bytes, and a leading zero byte where the top bit is set. */
function serialHex(normalized: string): string {
  const even = normalized.length % 2 === 1 ? `0${normalized}` : normalized;
  return Number.parseInt(even.slice(0, 2), 16) >= 0x80 ? `00${even}` : even;
}

/** forge throws on some bad signatures instead of returning false; both mean "does not verify". */
function verifies(csr: forge.pki.CertificateSigningRequest): boolean {
  try {
    return csr.verify();
  } catch {
    return false;
  }
}

function subject(
  clusterId: string,
  commonName: string,
  role: string,
): forge.pki.CertificateField[] {
  return [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: clusterId },
    { name: 'organizationalUnitName', value: role },
  ];
}

/** The cluster's certificate authority: the root of every node identity in one cluster. */
export class ClusterCA {
  readonly pin: string;

  private constructor(
    readonly clusterId: string,
    readonly certPem: string,
    private readonly keyPem: string,
  ) {
    this.pin = certificatePin(certPem);
  }

  static async create(clusterId: string): Promise<ClusterCA> {
    const keys = await generateKeyPair(3072);
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
    cert.serialNumber = randomSerialHex();
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + CA_CERT_VALID_DAYS * DAY_MS);
    // A name of its own per CA: during a rotation two CAs of one cluster are trusted side by side.
    const name = subject(
      clusterId,
      `mesh-ca-${clusterId}-${randomBytes(4).toString('hex')}`,
      ROLE_CA,
    );
    cert.setSubject(name);
    cert.setIssuer(name);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(rsaSigner(keys.privateKeyPem), forge.md.sha256.create());
    return new ClusterCA(clusterId, forge.pki.certificateToPem(cert), keys.privateKeyPem);
  }

  static load(clusterId: string, certPem: string, keyPem: string): ClusterCA {
    return new ClusterCA(clusterId, certPem, keyPem);
  }

  /** The private key, for persisting the CA; never sent over the network. */
  exportKeyPem(): string {
    return this.keyPem;
  }

  issue(options: IssueOptions): IssuedCertificate {
    const caCert = forge.pki.certificateFromPem(this.certPem);
    const cert = forge.pki.createCertificate();
    const validMs = (options.validDays ?? NODE_CERT_VALID_DAYS) * DAY_MS;
    // Valid a little before now, for clocks a little behind (a tenth of a short life at most).
    const validFrom = options.validFrom ?? new Date(Date.now() - Math.min(60_000, validMs / 10));
    cert.publicKey = forge.pki.publicKeyFromPem(options.publicKeyPem);
    cert.serialNumber = options.serial ? serialHex(options.serial) : randomSerialHex();
    cert.validity.notBefore = validFrom;
    cert.validity.notAfter = new Date(validFrom.getTime() + validMs);
    const role = options.operator ? ROLE_OPERATOR : ROLE_NODE;
    cert.setSubject(subject(this.clusterId, options.nodeId, role));
    cert.setIssuer(caCert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: !options.operator, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [{ type: 6, value: `mesh://${role}/${options.nodeId}` }],
      },
    ]);
    cert.sign(rsaSigner(this.keyPem), forge.md.sha256.create());
    return {
      certPem: forge.pki.certificateToPem(cert),
      serial: normalizeSerial(cert.serialNumber),
    };
  }

  /**
   * Another CA's certificate re-signed by this one (same subject and key, this CA as issuer): a
   * node that trusts only this CA accepts certificates of the other through it, while a CA
   * rotation is under way.
   */
  crossSign(otherCertPem: string): string {
    const other = forge.pki.certificateFromPem(otherCertPem);
    const mine = forge.pki.certificateFromPem(this.certPem);
    const cert = forge.pki.createCertificate();
    cert.publicKey = other.publicKey;
    cert.serialNumber = randomSerialHex();
    cert.validity.notBefore = other.validity.notBefore;
    cert.validity.notAfter = mine.validity.notAfter;
    cert.setSubject(other.subject.attributes);
    cert.setIssuer(mine.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(rsaSigner(this.keyPem), forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }

  /**
   * Issues a certificate for the key inside a CSR, after checking the CSR's own signature; under
   * a new random serial unless one is given.
   */
  issueFromCsr(
    csrPem: string,
    nodeId: string,
    validDays?: number,
    serial?: string,
  ): IssuedCertificate {
    const csr = forge.pki.certificationRequestFromPem(csrPem);
    if (!verifies(csr)) throw new Error('certificate request signature does not verify');
    const publicKey = csr.publicKey as forge.pki.rsa.PublicKey | null;
    if (!publicKey || publicKey.n.bitLength() < 2048) {
      throw new Error('certificate request must carry an RSA key of at least 2048 bits');
    }
    return this.issue({
      nodeId,
      publicKeyPem: forge.pki.publicKeyToPem(publicKey),
      validDays,
      serial,
    });
  }
}

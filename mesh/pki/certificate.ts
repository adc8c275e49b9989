import { createHash, X509Certificate } from 'node:crypto';

/** Who a certificate says its holder is. Every field comes from the signed subject. */
export interface CertificateFacts {
  nodeId: string;
  clusterId: string;
  role: string;
  serial: string;
  notAfter: Date;
}

/**
 * Subject attributes: CN = node ID (an operator's name), O = cluster ID, OU = role: "node", "ca",
 * or "operator" (a person's remote CLI: never accepted where a node is).
 */
export const ROLE_NODE = 'node';
export const ROLE_CA = 'ca';
export const ROLE_OPERATOR = 'operator';

/** Serial numbers are compared as lower-case hex without leading zeros, whoever printed them. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
  return hex === '' ? '0' : hex;
}

/** The CA pin carried in join tokens: SHA-256 over the certificate's DER bytes, in hex. */
export function certificatePin(certificate: string | Buffer): string {
  const der = typeof certificate === 'string' ? new X509Certificate(certificate).raw : certificate;
  return createHash('sha256').update(der).digest('hex');
}

function subjectField(subject: string, key: string): string {
  const line = subject.split('\n').find((l) => l.startsWith(`${key}=`));
  return line ? line.slice(key.length + 1) : '';
}

export function describeCertificate(pem: string): CertificateFacts {
  const cert = new X509Certificate(pem);
  return {
    nodeId: subjectField(cert.subject, 'CN'),
    clusterId: subjectField(cert.subject, 'O'),
    role: subjectField(cert.subject, 'OU'),
    serial: normalizeSerial(cert.serialNumber),
    notAfter: new Date(cert.validTo),
  };
}

/** The certificates of a PEM bundle, each as its own PEM. */
export function splitPem(bundle: string): string[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => `${pem}\n`,
  );
}

/** PEMs one after the other, each on lines of its own. */
export function bundlePem(pems: string[]): string {
  return pems.map((pem) => `${pem.trimEnd()}\n`).join('');
}

/** Whether a certificate was signed by this CA's key (validity dates aside). */
export function signedBy(certPem: string, caCertPem: string): boolean {
  return new X509Certificate(certPem).verify(new X509Certificate(caCertPem).publicKey);
}

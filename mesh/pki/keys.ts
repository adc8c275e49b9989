import {
  constants,
  createPrivateKey,
  generateKeyPair as generateKeyPairCallback,
  privateEncrypt,
} from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateRsa = promisify(generateKeyPairCallback);

export interface KeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

/**
 * RSA because node-forge, which builds and signs our X.509 material, only handles RSA keys;
 * node:crypto generates them natively, which is an order of magnitude faster than forge.
 */
export async function generateKeyPair(bits = 2048): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateRsa('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** RFC 8017 section 9.2, note 1: the DER of a SHA-256 DigestInfo up to the hash that ends it. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * What forge's certificate and CSR `sign(key, md)` want of a private key (`key.sign(md)`: an
 * RSASSA-PKCS1-v1_5 signature of the digest), with the RSA operation done by node:crypto. forge
 * does it in JavaScript: 160 ms a signature with the CA's 3072-bit key, 50 ms with a node's,
 * paid on every join, renewal and rotation; OpenSSL takes a few.
 */
export function rsaSigner(privateKeyPem: string): forge.pki.rsa.PrivateKey {
  const key = createPrivateKey(privateKeyPem);
  const sign = (md: forge.md.MessageDigest): string => {
    if (md.algorithm !== 'sha256') throw new Error(`mesh signs with SHA-256, not ${md.algorithm}`);
    const digestInfo = Buffer.concat([
      SHA256_DIGEST_INFO,
      Buffer.from(md.digest().getBytes(), 'binary'),
    ]);
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, digestInfo).toString(
      'binary',
    );
  };
  // forge's signing calls only sign(md); the rest of its key type is not needed here.
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

/** A certificate signing request proving possession of the key; the issuer ignores its subject. */
export function createCsr(keys: KeyPair): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  csr.setSubject([{ name: 'commonName', value: 'mesh-joining-node' }]);
  csr.sign(rsaSigner(keys.privateKeyPem), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

import { X509Certificate } from 'node:crypto';
import test from 'ava';
import forge from 'node-forge';
import { ClusterCA } from '../../../mesh/pki/ca.js';
import { certificatePin, describeCertificate } from '../../../mesh/pki/certificate.js';
import { createCsr, generateKeyPair, rsaSigner } from '../../../mesh/pki/keys.js';

const ca = await ClusterCA.create('ctest');

test('the CA pin is the SHA-256 of the CA certificate', (t) => {
  const fingerprint = new X509Certificate(ca.certPem).fingerprint256
    .replace(/:/g, '')
    .toLowerCase();
  t.is(ca.pin, fingerprint);
  t.is(certificatePin(ca.certPem), fingerprint);
});

test('a node certificate names node and cluster, lasts 90 days, and chains to the CA', async (t) => {
  const keys = await generateKeyPair();
  const issued = ca.issueFromCsr(createCsr(keys), 'n0123');
  const facts = describeCertificate(issued.certPem);
  t.like(facts, { nodeId: 'n0123', clusterId: 'ctest', role: 'node', serial: issued.serial });
  const days = (facts.notAfter.getTime() - Date.now()) / 86_400_000;
  t.true(days > 89.9 && days <= 90);
  const cert = new X509Certificate(issued.certPem);
  t.true(cert.verify(new X509Certificate(ca.certPem).publicKey));
  t.true(cert.checkIssued(new X509Certificate(ca.certPem)));
  t.false(cert.ca);
});

test('the CA certificate is self-signed, and OpenSSL checks its signature', (t) => {
  const cert = new X509Certificate(ca.certPem);
  t.true(cert.ca);
  t.true(cert.verify(cert.publicKey));
});

test('signing through node:crypto gives the very signature forge computes itself', async (t) => {
  const keys = await generateKeyPair();
  const signed = (key: forge.pki.rsa.PrivateKey) => {
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
    csr.setSubject([{ name: 'commonName', value: 'same' }]);
    csr.sign(key, forge.md.sha256.create());
    return forge.pki.certificationRequestToPem(csr);
  };
  // PKCS#1 v1.5 signatures are deterministic, so the two must match byte for byte.
  t.is(
    signed(rsaSigner(keys.privateKeyPem)),
    signed(forge.pki.privateKeyFromPem(keys.privateKeyPem)),
  );
  t.throws(() => rsaSigner(keys.privateKeyPem).sign(forge.md.sha1.create()), {
    message: /signs with SHA-256, not sha1/,
  });
});

test('serial numbers are unique', async (t) => {
  const keys = await generateKeyPair();
  const serials = new Set(
    Array.from(
      { length: 20 },
      () => ca.issue({ nodeId: 'n1', publicKeyPem: keys.publicKeyPem }).serial,
    ),
  );
  t.is(serials.size, 20);
});

test('a CSR whose signature does not verify is refused', async (t) => {
  const [mine, theirs] = await Promise.all([generateKeyPair(), generateKeyPair()]);
  // Claims their public key but is signed with mine: the requester does not hold the key.
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(theirs.publicKeyPem);
  csr.sign(forge.pki.privateKeyFromPem(mine.privateKeyPem), forge.md.sha256.create());
  const forged = forge.pki.certificationRequestToPem(csr);
  t.throws(() => ca.issueFromCsr(forged, 'n2'), { message: /signature does not verify/ });
});

import forge from 'node-forge';
import type { Logger } from '../../mesh/log.js';
import { ClusterCA, type IssueOptions } from '../../mesh/pki/ca.js';
import { type NodeIdentity, newClusterId, newNodeId } from '../../mesh/pki/identity.js';
import { generateKeyPair } from '../../mesh/pki/keys.js';
import { Transport, type TransportOptions } from '../../mesh/transport/transport.js';

/** A cluster CA that mints node identities directly, for tests that are not about joining. */
export interface TestCluster {
  ca: ClusterCA;
  identity(
    options?: Partial<Omit<IssueOptions, 'publicKeyPem'>>,
  ): Promise<NodeIdentity & { serial: string }>;
}

export async function testCluster(): Promise<TestCluster> {
  const clusterId = newClusterId();
  const ca = await ClusterCA.create(clusterId);
  return {
    ca,
    async identity(options = {}) {
      const keys = await generateKeyPair();
      const nodeId = options.nodeId ?? newNodeId();
      const issued = ca.issue({ ...options, nodeId, publicKeyPem: keys.publicKeyPem });
      return {
        clusterId,
        nodeId,
        keyPem: keys.privateKeyPem,
        certPem: issued.certPem,
        caCertPem: ca.certPem,
        serial: issued.serial,
      };
    },
  };
}

/** A listening transport on the given loopback address and an ephemeral port. */
export async function startTransport(
  identity: NodeIdentity,
  host: string,
  log: Logger,
  options: Partial<TransportOptions> = {},
): Promise<Transport> {
  const transport = new Transport({ identity, host, port: 0, log, ...options });
  await transport.listen();
  return transport;
}

/** A node certificate signed by its own key: right shape, no cluster behind it. */
export async function selfSignedIdentity(
  nodeId = newNodeId(),
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: nodeId }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.sign(forge.pki.privateKeyFromPem(keys.privateKeyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.privateKeyPem };
}

import type { ServerOptions } from 'node:https';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { bundlePem, normalizeSerial, ROLE_NODE, splitPem } from '../pki/certificate.js';
import type { NodeIdentity } from '../pki/identity.js';

/** The authenticated identity of the node at the other end of a connection. */
export interface Peer {
  nodeId: string;
  serial: string;
  /** Remote host:port of the connection (not the peer's listening address for inbound ones). */
  remote: string;
}

/**
 * Why a certificate the CA signed is not honoured now (its node was removed, its serial was never
 * recorded for that node or was retired), or undefined when it is. The transport asks it of every
 * handshake, both ways, and of every live connection when told to look again (recheck).
 */
export type Admission = (peer: Pick<Peer, 'nodeId' | 'serial'>) => string | undefined;

export interface PeerPolicy {
  clusterId: string;
  /** Without it, any certificate of the cluster CA with the node role is honoured. */
  admission?: Admission;
}

function field(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

export function peerFromCertificate(cert: PeerCertificate, remote: string): Peer {
  return { nodeId: field(cert.subject?.CN), serial: normalizeSerial(cert.serialNumber), remote };
}

/**
 * Why a CA-verified certificate is still not acceptable, or undefined when it is. The chain itself
 * is checked by OpenSSL against the cluster CA; this adds what OpenSSL cannot know.
 */
export function certificateRefusal(
  cert: PeerCertificate,
  policy: PeerPolicy,
  expectedNodeId?: string,
): string | undefined {
  const cluster = field(cert.subject?.O);
  const role = field(cert.subject?.OU);
  const nodeId = field(cert.subject?.CN);
  if (cluster !== policy.clusterId) return `certificate of cluster "${cluster}", not ours`;
  if (role !== ROLE_NODE) return `certificate role "${role}" is not a node`;
  if (expectedNodeId !== undefined && nodeId !== expectedNodeId) {
    return `expected node ${expectedNodeId}, found node ${nodeId}`;
  }
  return policy.admission?.({ nodeId, serial: normalizeSerial(cert.serialNumber) });
}

/**
 * What a node presents: its certificate, the cross-signed next CA when a rotation is under way
 * (so that a node still trusting only the current CA accepts it), and the current CA (a joiner
 * finds the CA its token pins there). Never the next CA's self-signed certificate: a verifier
 * that does not trust it yet could stop at it instead of going on through the cross-signed one.
 */
export function presentedChain(identity: NodeIdentity): string {
  const current = splitPem(identity.caCertPem).slice(0, 1);
  return bundlePem([
    identity.certPem,
    ...(identity.chainPem ? [identity.chainPem] : []),
    ...current,
  ]);
}

/**
 * requestCert is on and only the cluster CA is trusted. rejectUnauthorized is left to the upgrade
 * handler so that a refusal is answered with its reason and logged, and so that the join path,
 * the one route that accepts a client without a certificate (as swarmkit's CA endpoint does),
 * can share the port. Every member route refuses unless OpenSSL authorized the client.
 */
export function serverTlsOptions(identity: NodeIdentity): ServerOptions {
  return {
    key: identity.keyPem,
    cert: presentedChain(identity),
    ca: [identity.caCertPem],
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    handshakeTimeout: 10_000,
  };
}

/** Outbound member connections: present our certificate, accept only a valid cluster member. */
export function clientTlsOptions(
  identity: NodeIdentity,
  policy: PeerPolicy,
  expectedNodeId?: string,
): ConnectionOptions {
  return {
    key: identity.keyPem,
    cert: presentedChain(identity),
    ca: [identity.caCertPem],
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    // Peers are named by node ID in the certificate, not by host name.
    checkServerIdentity: (_host, cert) => {
      const reason = certificateRefusal(cert, policy, expectedNodeId);
      return reason === undefined ? undefined : new Error(reason);
    },
  };
}

import { randomBytes } from 'node:crypto';

/** Everything a node needs to take part in the cluster's mTLS traffic. */
export interface NodeIdentity {
  clusterId: string;
  nodeId: string;
  keyPem: string;
  certPem: string;
  /** The CAs this node trusts, concatenated: the current one first, then the next one during a rotation. */
  caCertPem: string;
  /** Intermediates presented with the certificate: the next CA cross-signed by the current one, mid-rotation. */
  chainPem?: string;
}

/** Short enough to read in a table, random enough (48 bits) never to collide in one cluster. */
export function newNodeId(): string {
  return `n${randomBytes(6).toString('hex')}`;
}

export function newClusterId(): string {
  return `c${randomBytes(8).toString('hex')}`;
}

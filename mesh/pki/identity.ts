import { randomBytes } from 'node:crypto';

/** Everything a node needs to take part in the cluster's mTLS traffic. */
export interface NodeIdentity {
  clusterId: string;
  nodeId: string;
  keyPem: string;
  certPem: string;
  caCertPem: string;
}

/** Short enough to read in a table, random enough (48 bits) never to collide in one cluster. */
export function newNodeId(): string {
  return `n${randomBytes(6).toString('hex')}`;
}

export function newClusterId(): string {
  return `c${randomBytes(8).toString('hex')}`;
}

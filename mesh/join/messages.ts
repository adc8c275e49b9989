/** Request types spoken on the join route, in the order a joiner sends them. */
export const JOIN_CHALLENGE = 'join.challenge';
export const JOIN_CERTIFICATE = 'join.certificate';

export interface ChallengeResponse {
  nonce: Buffer;
}

export interface CertificateRequest {
  clusterId: string;
  csrPem: string;
  proof: Buffer;
}

export interface CertificateResponse {
  nodeId: string;
  certPem: string;
  caCertPem: string;
}

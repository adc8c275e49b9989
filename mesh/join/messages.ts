/** Request types spoken on the join route, in the order a joiner sends them. */
export const JOIN_CHALLENGE = 'join.challenge';
export const JOIN_CERTIFICATE = 'join.certificate';

/** A join session's messages are small, and its peer not yet a member: no message in parts. */
export const JOIN_LIMITS = {
  maxFrameBytes: 64 * 1024,
  maxMessageBytes: 64 * 1024,
  maxBufferedBytes: 256 * 1024,
};

export interface ChallengeResponse {
  nonce: Buffer;
}

export interface CertificateRequest {
  clusterId: string;
  csrPem: string;
  proof: Buffer;
  /**
   * A node coming back with its data dir (its certificate expired, or was issued by a CA the
   * cluster has since retired): its old certificate and a signature of the nonce and the CSR with
   * the old key. It gets its own node ID back instead of a new one.
   */
  rejoin?: RejoinProof;
}

export interface RejoinProof {
  certPem: string;
  signature: Buffer;
}

export interface CertificateResponse {
  nodeId: string;
  certPem: string;
  caCertPem: string;
  /**
   * The Raft voters as the seed (a voter: only voters sign) knows them. A new node, whose log
   * names no voters yet, takes Raft messages only from these until its log names them itself.
   */
  voters: string[];
  /** It joined with a worker token: never seated as a voter, never given the voters' key. */
  workerOnly: boolean;
}

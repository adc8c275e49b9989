/**
 * The control API's contract: what the agent answers on its unix socket, and what the CLI (and
 * anything else that speaks to an agent) reads. Types only.
 */

export interface RaftStatus {
  role: string;
  term: number;
  leader: string | null;
  commit: number;
  applied: number;
  voters: string[];
  learners: string[];
  /** Equal on two replicas when they hold the same state. */
  stateDigest: string;
}

/** GET /v1/status */
export interface StatusResponse {
  nodeId: string;
  clusterId: string;
  address: string;
  version: string;
  raft?: RaftStatus;
  members: { alive: number; suspect: number; dead: number; left: number };
}

export interface NodeRow {
  id: string;
  address: string;
  /** What gossip sees now (alive, suspect, dead, left), or the recorded status of an unseen node. */
  status: string;
  since: string | null;
  version: string;
  labels: Record<string, string>;
  capacity?: { cpus: number; memoryBytes: number };
  /** Whether the cluster's replicated registry holds this node. */
  recorded: boolean;
  self: boolean;
  raft: 'voter' | 'learner' | 'none';
}

/** GET /v1/nodes: consistent is false when no quorum confirmed the read. */
export interface NodesResponse {
  consistent: boolean;
  nodes: NodeRow[];
}

/** GET /v1/token */
export interface TokenResponse {
  token: string;
}

/**
 * The control API's contract: what the agent answers on its unix socket, and what the CLI (and
 * anything else that speaks to an agent) reads. Types only.
 */
import type { ServiceDefinition } from '../mesh/api/services.js';

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

/** POST /v1/stacks: deploy (create or update) a stack's services. */
export interface DeployRequest {
  stack: string;
  services: ServiceDefinition[];
  /** Remove services of the stack that the file no longer declares. */
  prune?: boolean;
}

export interface DeployResponse {
  stack: string;
  services: Array<{
    id: string;
    version: number;
    change: 'created' | 'updated' | 'scaled' | 'unchanged' | 'removed';
  }>;
}

/** GET /v1/stacks */
export interface StackRow {
  name: string;
  services: Array<{
    id: string;
    mode: 'replicated' | 'global';
    /** Replicated: the count asked for; global: the tasks planned. */
    desired: number;
    running: number;
    image: string;
    runtime: 'docker' | 'process';
    ports: string[];
    version: number;
  }>;
}

/** GET /v1/tasks?stack=S&service=S */
export interface TaskRow {
  id: string;
  service: string;
  slot: number;
  node: string | null;
  nodeAddress: string | null;
  desired: 'running' | 'shutdown';
  state: string;
  reason: string | null;
  since: string | null;
  restarts: number;
  serviceVersion: number;
  /** The service's version now: a task behind it is being replaced. */
  currentVersion: number | null;
  /** host:port each published container port is reachable at. */
  ports: string[];
}

/** GET /v1/logs?service=S&cursors=JSON */
export interface LogsResponse {
  lines: Array<{ task: string; line: string }>;
  /** Pass back to get only what came after. */
  cursors: Record<string, string>;
  /** Tasks whose node did not answer, and why. */
  unreachable: Array<{ task: string; reason: string }>;
}

/**
 * The control API's contract: every route the agent answers on its unix socket, what it is asked
 * and what it answers, shared by the agent and the CLI (and anything else that speaks to an
 * agent). A GET is asked through its query string, a POST through a JSON body.
 */
import type { AutoscalePolicy, AutoscaleRecord, Observed } from '../../mesh/api/autoscale.js';
import type { IngressState, NodeRecord, UnservedPort } from '../../mesh/api/nodes.js';
import type { ValueKind } from '../../mesh/api/secrets.js';
import type {
  PortSpec,
  PullPolicy,
  RolloutStatus,
  ServiceChange,
  ServiceDefinition,
  ServiceRecord,
} from '../../mesh/api/services.js';
import type { PublishedPort } from '../../mesh/api/tasks.js';
import type { BackupFile } from '../../mesh/state/backup.js';

export interface RaftStatus {
  role: string;
  term: number;
  leader: string | null;
  commit: number;
  applied: number;
  voters: string[];
  learners: string[];
  /** How many more voters may fail with the cluster still committing (dead ones counted). */
  tolerates: number;
  /** The voters the live nodes that may be seated allow (the largest odd count, at most 5). */
  targetVoters: number;
  /** Equal on two replicas when they hold the same state. */
  stateDigest: string;
  /**
   * This node's latest campaign, each stage as an ISO time: since when it had not heard the
   * leader, its pre-vote, its vote, leading, and its term's first commit.
   */
  lastCampaign: {
    term: number;
    leaderHeardAt: string;
    preVoteAt: string | null;
    voteAt: string | null;
    leaderAt: string | null;
    committedAt: string | null;
  } | null;
}

/** GET /v1/status */
export interface StatusResponse {
  nodeId: string;
  clusterId: string;
  address: string;
  version: string;
  raft: RaftStatus;
  members: { alive: number; suspect: number; dead: number; left: number };
  /** Autolock as this node is: off, or on and this node's voters' key opened (unlocked) or not. */
  lock: 'off' | 'locked' | 'unlocked';
  /** The agent's process: `mesh uninstall` stops it where no init system runs it. */
  pid: number;
}

export interface NodeRow {
  id: string;
  /** The machine's host name, as its agent reported it at join. */
  hostname: string;
  address: string;
  /** What gossip sees now (alive, suspect, dead, left), or the recorded status of an unseen node. */
  status: string;
  /** It stopped to restart (SIGHUP), its tasks left running: they wait for it (the restart grace). */
  restarting: boolean;
  since: string | null;
  version: string;
  /** The labels constraints see: its agent's own, and those set with mesh node label over them. */
  labels: Record<string, string>;
  capacity?: { cpus: number; memoryBytes: number };
  /** Whether the cluster's replicated registry holds this node as gossip showed it (not joining). */
  recorded: boolean;
  self: boolean;
  raft: 'voter' | 'learner' | 'none';
  /** A voter (a manager): leader, reachable (alive) or unreachable, as Swarm says; null for others. */
  manager: 'leader' | 'reachable' | 'unreachable' | null;
  /** mesh node drain|activate: a drained node runs nothing. */
  availability: 'active' | 'drain';
  /** The token it joined with: a manager token's node may be seated, a worker token's never. */
  token: 'manager' | 'worker';
  /** When its certificate expires, as it gossips; null for a node not seen. */
  certExpires: string | null;
  /** Its HTTP ingress, as it gossips: null until it listens (it starts with the first route). */
  ingress: IngressState | null;
  /** The ingress ports it could not take, with why. */
  ingressUnserved: UnservedPort[];
}

/** GET /v1/nodes: consistent is false when no quorum confirmed the read. */
export interface NodesResponse {
  consistent: boolean;
  nodes: NodeRow[];
}

/** GET /v1/ca: the cluster CA, and a rotation under way. Pins are SHA-256 of the CA certificate. */
export interface CaStatus {
  current: string;
  next: string | null;
  startedAt: string | null;
  /** How many CAs earlier rotations retired. */
  retired: number;
  /** Live nodes, and the pin of the CA that issued each one's certificate. */
  nodes: Array<{ id: string; caPin: string | null }>;
  /** Live nodes not yet renewed under the next CA. */
  waitingFor: string[];
}

/** The unlock key of autolock, as a person types it (MESH-UNLOCK-1-…). */
export interface UnlockKeyResponse {
  unlockKey: string;
}

/** GET /v1/token */
export interface TokenResponse {
  token: string;
}

/** A secret or config as `mesh secret|config ls|inspect` shows it. */
export interface ValueRow {
  name: string;
  versions: Array<{ version: number; size: number; createdAt: string }>;
  /** Services that use it, with the version each runs. */
  services: Array<{ service: string; version: number }>;
}

/** A value a deploy brings (from the stack file), or names as existing (external). */
export interface DeployValue {
  kind: ValueKind;
  name: string;
  /** base64; absent for an external one. */
  data?: string;
}

/** POST /v1/stacks: deploy (create or update) a stack's services. */
export interface DeployRequest {
  stack: string;
  services: ServiceDefinition[];
  /** Remove services of the stack that the file no longer declares. */
  prune?: boolean;
  /** Check everything and say what would change, writing nothing. */
  dryRun?: boolean;
  /** Secrets and configs the stack file declares: values to store, or external names. */
  values?: DeployValue[];
  /** Refuse the deploy when a service's constraints fit no node today (else it waits, pending). */
  strict?: boolean;
  /**
   * Every service's pull_policy, over the file's; `always` also replaces the running tasks, so
   * that a moved tag (`:latest`) is pulled again.
   */
  pull?: PullPolicy;
}

export interface ServiceUpdateRequest {
  service: string;
  image?: string;
  /** Variables set (added or changed). */
  envAdd?: Record<string, string>;
  /** Variables removed. */
  envRm?: string[];
  replicas?: number;
  /** A new version even when nothing else changes: every task is replaced. */
  force?: boolean;
  pull?: PullPolicy;
}

export interface ServiceUpdateResponse {
  id: string;
  version: number;
  change: ServiceChange;
}

export interface DeployResponse {
  stack: string;
  services: Array<{
    id: string;
    version: number;
    change: ServiceChange | 'removed';
  }>;
  /** Services whose constraints no node satisfies yet: deployed, their tasks pending until one does. */
  unplaceable: Array<{ id: string; reason: string }>;
}

/** A service of GET /v1/stacks. */
export interface ServiceRow {
  id: string;
  mode: 'replicated' | 'global';
  /** Replicated: the count asked for; global: the tasks planned. */
  desired: number;
  /** Tasks of the current version that run, and of those the ones ready (taking traffic). */
  running: number;
  ready: number;
  image: string;
  runtime: 'docker' | 'process';
  ports: PortSpec[];
  version: number;
  /** Its service address; null until the leader allocated one. */
  address: string | null;
  /** Its DNS name: `<service>.<stack>.mesh`. */
  dnsName: string;
  /**
   * Nodes that cannot serve one of its published ports, and why; for a service the HTTP ingress
   * routes, also a node's ingress port it could not take (its reason starts "HTTP ingress: ").
   */
  unserved: Array<{ port: number; node: string; reason: string }>;
  /** Its published ports that no node serves: each node that should reports it taken. */
  servedNowhere: number[];
  /** Its published ports that a node which should take them up has not reported on yet. */
  portsUnreported: number[];
  /** Ready nodes whose HTTP ingress has not said it listens, for a service the ingress routes. */
  ingressSilent: string[];
  /** The rollout of its current version; null for a service never updated. */
  rollout: RolloutStatus | null;
  /** The current version undoes an update (a rollback). */
  rollingBack: boolean;
  /**
   * A task of the current version that cannot start (failed, or restarting again and again
   * without running), in words: what a deploy of a new service stops on. Null when none.
   */
  failing: string | null;
  /** Its autoscaling bounds and targets, and what the leader last saw; null when not autoscaled. */
  autoscale: (Pick<AutoscalePolicy, 'min' | 'max' | 'targets'> & { observed?: Observed }) | null;
}

/** GET /v1/service: the stored service, and its autoscaler's record (null: none yet). */
export type ServiceDetail = ServiceRecord & { autoscaling: AutoscaleRecord | null };

/** GET /v1/stacks */
export interface StackRow {
  name: string;
  /** A service whose stored record fails its checks is listed by ID with why. */
  services: Array<ServiceRow | { id: string; damaged: string }>;
}

export const EVENT_TYPES = [
  'task',
  'service',
  'node',
  'raft',
  'certificate',
  'ca',
  'write',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Something that happened in the cluster, as `mesh events` shows it. */
export interface ClusterEvent {
  /** Its place in this node's feed: later events have larger numbers. */
  seq: number;
  time: string;
  type: EventType;
  /** What happened to it: `running`, `failed`, `rollout-paused`, `suspect`, `leader`, … */
  action: string;
  /** What it happened to: a task, service or node ID. */
  subject: string;
  /** Why, or what else to know, when there is something. */
  reason?: string;
  /** The service and node it concerns, where that is not the subject. */
  service?: string;
  node?: string;
}

/** An operator of GET /v1/operators: never the certificate's key. */
export interface OperatorRow {
  name: string;
  serial: string;
  expires: string;
  addedAt: string;
  addedBy: string;
  state: 'valid' | 'expired' | 'revoked';
}

/**
 * What `mesh operator add` prints: everything a CLI elsewhere needs to reach the cluster as this
 * operator (`mesh --context FILE …`). It holds a private key: keep it as a password is kept.
 */
export interface OperatorContext {
  cluster: string;
  operator: string;
  /** host:port of the managers, tried in turn. */
  endpoints: string[];
  /** The cluster CA certificates a node may present a chain to. */
  ca: string;
  cert: string;
  key: string;
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
  /** Whether it takes traffic; null unless running. */
  ready: boolean | null;
  /** Its readiness probe's latest outcome. */
  probe: string | null;
  /** The volume that keeps it on its node, if any. */
  pinnedBy: { volume: string; node: string } | null;
  /** Where each published container port is reachable. */
  ports: PublishedPort[];
  /** The image of its version (a process task: its command); null once that version is forgotten. */
  image: string | null;
  /** How its process last ended, when it did. */
  exitCode: number | null;
}

/** GET /v1/volumes: the volumes that pin their services, each on its node. */
export interface VolumeRow {
  name: string;
  node: string;
  nodeAddress: string | null;
  /** The node's status as the cluster records it. */
  nodeStatus: string;
  services: string[];
  pinnedAt: string;
}

/** GET /v1/logs?service=S&cursors=JSON */
export interface LogsResponse {
  lines: Array<{ task: string; line: string }>;
  /** Pass back to get only what came after. */
  cursors: Record<string, string>;
  /** Tasks whose node did not answer, and why. */
  unreachable: Array<{ task: string; reason: string }>;
}

/** GET /v1/node: a node's record and the tasks assigned to it. */
export interface NodeDetail extends Omit<NodeRecord, 'since'> {
  id: string;
  since: string;
  tasks: Array<{ id: string; desired: 'running' | 'shutdown'; state: string }>;
}

/** POST /v1/node: availability and labels (KEY=VALUE adds, KEY- removes). */
export interface NodeUpdateRequest {
  node: string;
  availability?: 'active' | 'drain';
  labels?: string[];
}

/** A service as this node's routing table holds it. */
export interface RouteRow {
  id: string;
  dnsName: string;
  address: string | null;
  /**
   * Container ports served on the service address, and where each comes from: the stack file,
   * the image's EXPOSE, or a replica seen listening on it.
   */
  ports: Array<{ port: number; source: 'declared' | 'image' | 'listening' }>;
  /** UDP ports served on the service address (the declared ones). */
  udpPorts: number[];
  /** Ports published on every node (ingress mode): `8080`, and `53/udp` for a UDP one. */
  published: string[];
  networks: string[];
  /** Host names and path prefixes of its x-mesh routes (beside `<service>.<stack>.mesh`). */
  hosts: string[];
  /** Its ready replicas, each with the ports it serves. */
  endpoints: Array<{
    task: string;
    node: string;
    host: string;
    local: boolean;
    ports: number[];
    udpPorts: number[];
  }>;
  /** What this node's HTTP ingress saw of it since the agent started. */
  http: {
    requests: number;
    statuses: Record<string, number>;
    latency: number[];
  } | null;
}

/** GET /v1/traffic?service=S: what the HTTP ingress of every node saw of a service, node by node. */
export interface TrafficResponse {
  service: string;
  /** When the nodes were asked. */
  at: string;
  /** The latency buckets' upper bounds (ms), the last one open: the counts of `http.latency`. */
  bucketsMs: number[];
  nodes: Array<{ node: string; http: RouteRow['http']; unreachable?: string }>;
}

/** GET /v1/routes?service=S: this node's routing table, or one service of it (ID or name). */
export interface RoutesResponse {
  node: string;
  services: RouteRow[];
  /** Ports the table does not route, and why (UDP). */
  notRouted: string[];
  /** Addresses this node should serve but cannot (a port taken), and why. */
  notServed: Array<{ address: string; reason: string }>;
}

/** A certificate of the HTTPS ingress, without its key. */
export interface CertificateRow {
  host: string;
  subject: string;
  notAfter: string;
  addedAt: string;
}

/** A registry login, without its password. */
export interface RegistryRow {
  host: string;
  username: string;
  addedAt: string;
  /** Services whose images come from that registry. */
  services: string[];
}

/** Where a node's view stands: past any of these, a page that shows it has something to re-read. */
export interface ChangeMark {
  /** The replicated state's applied index. */
  index: number;
  /** The events feed's last event. */
  events: number;
  /** Membership changes seen since the agent started (a member suspect, dead, back). */
  members: number;
}

/** Whether a task of a service would go on a node, and if not, the first check it fails and the fix. */
export interface NodeFit {
  node: string;
  hostname: string;
  fits: boolean;
  check?: string;
  fix?: string;
}

/** GET /v1/placement: where a service's tasks may go, per node, and its tasks waiting for one. */
export interface PlacementResponse {
  service: string;
  pending: Array<{ task: string; reason: string }>;
  nodes: NodeFit[];
}

/** A route: what it is asked (query or body) and what it answers. */
interface Route<Request, Response> {
  request: Request;
  response: Response;
}

type Nothing = Record<string, never>;

export interface ControlApi {
  'GET /v1/status': Route<Nothing, StatusResponse>;
  'GET /v1/nodes': Route<Nothing, NodesResponse>;
  /** A manager token (default: a node that may be seated), or a worker token (never seated). */
  'GET /v1/token': Route<{ kind?: 'manager' | 'worker' }, TokenResponse>;
  /** A new join secret of that kind: earlier tokens of it stop working. */
  'POST /v1/token/rotate': Route<{ kind?: 'manager' | 'worker' }, TokenResponse>;
  'GET /v1/ca': Route<Nothing, CaStatus>;
  /** `mesh unlock`: opens this node's copy of the voters' key (autolock). */
  'POST /v1/unlock': Route<{ key: string }, { unlocked: true }>;
  /** `mesh unlock-key`: the cluster's unlock key, from a node that knows it. */
  'GET /v1/unlock-key': Route<Nothing, UnlockKeyResponse>;
  'POST /v1/unlock-key/rotate': Route<Nothing, UnlockKeyResponse>;
  /** `mesh cluster autolock on|off`: with on, the new unlock key. */
  'POST /v1/autolock': Route<{ on: boolean }, Partial<UnlockKeyResponse>>;
  /** Starts a CA rotation (a manager only). */
  'POST /v1/ca/rotate': Route<Nothing, CaStatus>;
  /** A backup of the cluster state: with a passphrase (on a manager), or the voters' key. */
  'POST /v1/backup': Route<{ passphrase?: string }, BackupFile>;
  'POST /v1/stacks': Route<DeployRequest, DeployResponse>;
  'GET /v1/stacks': Route<Nothing, StackRow[]>;
  'POST /v1/stacks/rm': Route<{ stack: string }, { stack: string; services: string[] }>;
  'POST /v1/services/scale': Route<
    { service: string; replicas: number },
    { service: string; replicas: number }
  >;
  'POST /v1/services/rollback': Route<{ service: string }, { service: string; version: number }>;
  /** A service as the cluster holds it: its definition, version and rollout (`mesh inspect`). */
  'GET /v1/service': Route<{ service: string }, ServiceDetail>;
  /** `mesh service update`: the stored service with these changes, rolled out as a deploy is. */
  'POST /v1/services/update': Route<ServiceUpdateRequest, ServiceUpdateResponse>;
  /** Tasks of a stack or a service by name, of a stack, of a service (its ID), or all. */
  'GET /v1/tasks': Route<{ name?: string; stack?: string; service?: string }, TaskRow[]>;
  /** A service's running tasks' output, or one task's (`task`: a finished one of its history too). */
  'GET /v1/logs': Route<
    { service?: string; task?: string; tail?: string; cursors?: string },
    LogsResponse
  >;
  'GET /v1/node': Route<{ node: string }, NodeDetail>;
  /** Per node, whether a task of the service fits there, or the first check it fails and the fix. */
  'GET /v1/placement': Route<{ service: string }, PlacementResponse>;
  'POST /v1/operators': Route<{ name: string; expiresMs?: number }, OperatorContext>;
  'GET /v1/operators': Route<Nothing, OperatorRow[]>;
  'POST /v1/operators/revoke': Route<{ name: string }, OperatorRow>;
  /** This node's events feed: after a place in it (-f), from a time (ms), of some types. */
  'GET /v1/events': Route<
    { after?: string; since?: string; types?: string },
    { events: ClusterEvent[]; last: number }
  >;
  /**
   * A blocking query: this node's mark once its state, events feed or membership moves past the
   * one given (each part optional), or when `wait` (ms, at most 30 s) is over.
   */
  'GET /v1/changes': Route<
    { index?: string; events?: string; members?: string; wait?: string },
    ChangeMark
  >;
  'GET /v1/routes': Route<{ service?: string }, RoutesResponse>;
  /** What every node's HTTP ingress saw of the service since its agent started. */
  'GET /v1/traffic': Route<{ service: string }, TrafficResponse>;
  'POST /v1/certs': Route<{ host: string; certPem: string; keyPem: string }, CertificateRow>;
  'GET /v1/certs': Route<Nothing, CertificateRow[]>;
  'POST /v1/certs/rm': Route<{ host: string }, { host: string }>;
  /** A login checked with the registry (checked: false when this node has no engine to ask). */
  'POST /v1/registries': Route<
    { host: string; username: string; password: string },
    RegistryRow & { checked: boolean }
  >;
  'GET /v1/registries': Route<Nothing, RegistryRow[]>;
  'POST /v1/registries/rm': Route<{ host: string }, { host: string }>;
  /** Secrets and configs (kind: secrets or configs); data is base64. */
  'POST /v1/values': Route<{ kind: ValueKind; name: string; data: string }, ValueRow>;
  'POST /v1/values/update': Route<
    { kind: ValueKind; name: string; data: string },
    ValueRow & { rolled: string[]; changed: boolean }
  >;
  'POST /v1/values/rm': Route<{ kind: ValueKind; name: string }, { name: string }>;
  'GET /v1/values': Route<{ kind: ValueKind }, ValueRow[]>;
  'GET /v1/value': Route<{ kind: ValueKind; name: string }, ValueRow>;
  'GET /v1/volumes': Route<Nothing, VolumeRow[]>;
  'POST /v1/node': Route<NodeUpdateRequest, { id: string; node: NodeRecord }>;
  /** Removes a node for good; a node still alive only with force. */
  'POST /v1/node/rm': Route<{ node: string; force?: boolean }, { id: string }>;
}

export type RouteName = keyof ControlApi;
export type RequestOf<R extends RouteName> = ControlApi[R]['request'];
export type ResponseOf<R extends RouteName> = ControlApi[R]['response'];

/** A request's fields as they arrive: any may be missing or of any type until checked. */
export type Untrusted<T> = { [K in keyof T]?: unknown };

/** What the agent answers each route with, given the request as sent (the handler checks it). */
export type ControlHandlers = {
  [R in RouteName]: (request: Untrusted<RequestOf<R>>) => ResponseOf<R> | Promise<ResponseOf<R>>;
};

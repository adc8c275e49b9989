import { createServer } from 'node:net';
import Docker from 'dockerode';
import type { NodeRecord } from '../mesh/api/nodes.js';
import { joinCluster } from '../mesh/join/client.js';
import { JoinService } from '../mesh/join/service.js';
import { createLogger, type Logger } from '../mesh/log.js';
import { Membership } from '../mesh/membership/runtime.js';
import { ClusterCA } from '../mesh/pki/ca.js';
import { describeCertificate } from '../mesh/pki/certificate.js';
import { type NodeIdentity, newClusterId, newNodeId } from '../mesh/pki/identity.js';
import { generateKeyPair } from '../mesh/pki/keys.js';
import { decodeJoinToken, encodeJoinToken, newJoinSecret } from '../mesh/pki/token.js';
import { MembershipSync } from '../mesh/raft/membership-sync.js';
import { RaftNode } from '../mesh/raft/node.js';
import { RaftStorage } from '../mesh/raft/storage.js';
import { ClusterState } from '../mesh/state/cluster-state.js';
import { Transport } from '../mesh/transport/transport.js';
import { ControlError, ControlServer } from './control.js';
import type { NodeRow, NodesResponse, RaftStatus, StatusResponse } from './control-api.js';
import { type ClusterFile, DataDir } from './datadir.js';
import { ClusterLogs } from './logs.js';
import { nodeMeta, VERSION } from './meta.js';
import { Nodes } from './nodes.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { Reconciler } from './reconciler/reconciler.js';
import { DockerRuntime, pingEngine } from './runtime/docker.js';
import { ProcessRuntime } from './runtime/process.js';
import type { Runtime } from './runtime/runtime.js';
import { DEFAULT_SCHEDULER_OPTIONS } from './scheduler/scheduler.js';
import { proposeSoon, stackRoutes } from './stack-routes.js';
import { Stacks } from './stacks.js';

export const DEFAULT_PORT = 7946;

const NOT_CA = 'this node does not hold the cluster CA; ask the node that ran "mesh init"';

export interface AgentOptions {
  dataDir: string;
  /** The address other nodes reach this one at; the agent also listens and dials from it. */
  advertise: string;
  port: number;
  labels: Record<string, string>;
  logLevel?: string;
  rescheduleAfterMs?: number;
}

export class AgentError extends Error {
  override name = 'AgentError';
}

// Peer addresses are saved at most this often, for rejoining after a restart.
const PEER_SAVE_DELAY_MS = 2000;

/** The node daemon: identity, transport, membership and the control API, wired together. */
export class Agent {
  private membership: Membership | undefined;
  private raft: RaftNode | undefined;
  private sync: MembershipSync | undefined;
  private readonly state = new ClusterState();
  private control: ControlServer | undefined;
  private transport: Transport | undefined;
  private peerSave: NodeJS.Timeout | undefined;
  private orchestrator: Orchestrator | undefined;
  private reconciler: Reconciler | undefined;
  private runtimes: Runtime[] = [];
  /** Why this node cannot run Docker tasks, when it cannot. */
  dockerMissing: string | undefined;

  private constructor(
    private readonly dir: DataDir,
    private readonly cluster: ClusterFile,
    private readonly identity: NodeIdentity,
    private readonly ca: ClusterCA | undefined,
    readonly log: Logger,
  ) {}

  /** Creates a cluster: its CA, this node's identity, and a join secret. */
  static async init(options: AgentOptions): Promise<Agent> {
    const dir = new DataDir(options.dataDir);
    await dir.create();
    await checkListenable(options.advertise, options.port);
    const clusterId = newClusterId();
    const ca = await ClusterCA.create(clusterId);
    const keys = await generateKeyPair();
    const nodeId = newNodeId();
    const issued = ca.issue({ nodeId, publicKeyPem: keys.publicKeyPem });
    const identity = {
      clusterId,
      nodeId,
      keyPem: keys.privateKeyPem,
      certPem: issued.certPem,
      caCertPem: ca.certPem,
    };
    const cluster: ClusterFile = {
      clusterId,
      nodeId,
      advertise: options.advertise,
      port: options.port,
      labels: options.labels,
      seeds: [],
      joinSecret: newJoinSecret(),
      rescheduleAfterMs: options.rescheduleAfterMs,
    };
    await dir.writeIdentity(identity, ca.exportKeyPem());
    const log = agentLogger(nodeId, options);
    // The first node is the cluster's only voter until the leader (itself) seats others.
    const bootstrap = { voters: [nodeId], learners: [] };
    const storage = RaftStorage.open(dir.raftDir, bootstrap, log);
    storage.saveSnapshot({ index: 0, term: 0, membership: bootstrap, data: null });
    storage.close();
    await dir.writeCluster(cluster);
    const agent = new Agent(dir, cluster, identity, ca, log);
    agent.log.info({ clusterId, dataDir: dir.path }, 'cluster created');
    await agent.start([]);
    return agent;
  }

  /** Joins the cluster a token names: pins its CA, proves the secret, receives a certificate. */
  static async join(tokenText: string, options: AgentOptions): Promise<Agent> {
    const token = decodeJoinToken(tokenText);
    const dir = new DataDir(options.dataDir);
    await dir.create();
    await checkListenable(options.advertise, options.port);
    const bootLog = agentLogger('(joining)', options);
    const identity = await joinCluster(token, { log: bootLog, bindAddress: options.advertise });
    const cluster: ClusterFile = {
      clusterId: identity.clusterId,
      nodeId: identity.nodeId,
      advertise: options.advertise,
      port: options.port,
      labels: options.labels,
      seeds: token.seeds,
      rescheduleAfterMs: options.rescheduleAfterMs,
    };
    await dir.writeIdentity(identity);
    await dir.writeCluster(cluster);
    const agent = new Agent(
      dir,
      cluster,
      identity,
      undefined,
      agentLogger(identity.nodeId, options),
    );
    await agent.start(token.seeds);
    return agent;
  }

  /** Starts again from a data dir: same identity, rejoining through known peers and seeds. */
  static async restart(options: Pick<AgentOptions, 'dataDir' | 'logLevel'>): Promise<Agent> {
    const dir = new DataDir(options.dataDir);
    const cluster = await dir.readCluster();
    const { identity, caKeyPem } = await dir.readIdentity(cluster);
    const ca = caKeyPem
      ? ClusterCA.load(cluster.clusterId, identity.caCertPem, caKeyPem)
      : undefined;
    const log = agentLogger(cluster.nodeId, options);
    const peers = await dir.readPeers().catch((error: Error) => {
      log.warn(
        { reason: error.message },
        'peer cache unreadable; rejoining through the seeds only',
      );
      return [];
    });
    const agent = new Agent(dir, cluster, identity, ca, log);
    await agent.start([...new Set([...peers, ...cluster.seeds])]);
    return agent;
  }

  get address(): string {
    return `${this.cluster.advertise}:${this.cluster.port}`;
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }

  /** A token for joining this cluster through this node, if this node holds the CA. */
  joinToken(): string | undefined {
    if (!this.ca || !this.cluster.joinSecret) return undefined;
    return encodeJoinToken({
      clusterId: this.cluster.clusterId,
      seeds: [this.address],
      caPin: this.ca.pin,
      secret: this.cluster.joinSecret,
    });
  }

  /** Leaves the cluster gracefully (others see "left", not "dead") and stops. */
  async shutdown(): Promise<void> {
    this.log.info('leaving the cluster');
    await this.raft?.handOver();
    await this.membership?.leave();
    await this.stop();
  }

  /** Stops without a word to the cluster, as a crash would. */
  async stop(): Promise<void> {
    clearTimeout(this.peerSave);
    this.orchestrator?.stop();
    this.reconciler?.stop();
    await Promise.all(this.runtimes.map((r) => r.close()));
    this.sync?.stop();
    this.raft?.stop();
    this.membership?.stop();
    await this.control?.close();
    await this.transport?.close();
  }

  private async start(seeds: string[]): Promise<void> {
    const { cluster, identity, ca, log } = this;
    // Before listening, so that peers never meet a node that answers but does not gossip yet.
    // Gossiped with the node's metadata: the scheduler gives Docker tasks only to nodes with an engine.
    const docker = await this.dockerRuntime();
    this.dockerMissing = docker.missing;
    const join = ca
      ? new JoinService({ ca, secret: () => cluster.joinSecret ?? '', log })
      : undefined;
    const transport = new Transport({
      identity,
      host: cluster.advertise,
      port: cluster.port,
      log,
      join,
    });
    await transport.listen().catch((error: Error) => {
      throw listenError(error, cluster.advertise, cluster.port);
    });
    this.transport = transport;
    // Removed nodes stay refused: the replicated records say so, replayed at every start.
    this.state.watch(({ kind, id, object }) => {
      const node = object?.value as NodeRecord | undefined;
      if (kind !== 'nodes' || node?.status !== 'removed' || !node.serial) return;
      if (transport.revocations.has(node.serial)) return;
      if (id === identity.nodeId)
        log.error(
          'this node was removed from the cluster (mesh node rm): it is refused everywhere',
        );
      else
        log.info({ removed: id, serial: node.serial }, 'node removed: its certificate is refused');
      transport.revoke(node.serial);
    });
    const membership = new Membership({
      transport,
      log,
      meta: nodeMeta(
        this.address,
        cluster.labels,
        describeCertificate(identity.certPem).serial,
        docker.runtime ? ['docker', 'process'] : ['process'],
      ),
    });
    this.membership = membership;
    membership.on('change', () => this.savePeersSoon());
    const storage = RaftStorage.open(this.dir.raftDir, { voters: [], learners: [] }, log);
    const raft = new RaftNode({
      transport,
      storage,
      machine: this.state,
      log,
      addressOf: (id) => membership.members().find((m) => m.id === id)?.address,
    });
    this.raft = raft;
    this.sync = new MembershipSync(raft, membership, this.state, log);
    const access = { state: this.state, propose: (command: unknown) => proposeSoon(raft, command) };
    const stacks = new Stacks(access);
    const nodes = new Nodes(access, identity.nodeId);
    this.orchestrator = new Orchestrator(raft, this.state, log, {
      ...DEFAULT_SCHEDULER_OPTIONS,
      rescheduleAfterMs: cluster.rescheduleAfterMs ?? DEFAULT_SCHEDULER_OPTIONS.rescheduleAfterMs,
    });
    const processes = new ProcessRuntime({
      dir: this.dir.tasksDir,
      hostIp: cluster.advertise,
      log,
    });
    this.runtimes = [processes, ...(docker.runtime ? [docker.runtime] : [])];
    this.reconciler = new Reconciler({
      nodeId: identity.nodeId,
      state: this.state,
      propose: access.propose,
      docker: docker.runtime,
      dockerMissing: docker.missing,
      process: processes,
      caughtUp: () => raft.linearizableRead(5000),
      log,
    });
    const logs = new ClusterLogs(identity.nodeId, this.state, transport, this.reconciler, stacks);
    this.control = new ControlServer(
      { ...this.routes(), ...stackRoutes(stacks, nodes, logs, raft, log) },
      log,
    );
    await this.control.listen(this.dir.controlSocket);
    membership.start(seeds.filter((seed) => seed !== this.address));
    raft.start();
    this.sync.start();
    this.orchestrator.start();
    await this.reconciler.start();
    log.info({ address: this.address, seeds, version: VERSION }, 'agent started');
  }

  private routes() {
    return {
      'GET /v1/status': (): StatusResponse => {
        const members = this.membership?.members() ?? [];
        const count = (status: string) => members.filter((m) => m.status === status).length;
        return {
          nodeId: this.identity.nodeId,
          clusterId: this.cluster.clusterId,
          address: this.address,
          version: VERSION,
          raft: this.raftStatus(),
          members: {
            alive: count('alive'),
            suspect: count('suspect'),
            dead: count('dead'),
            left: count('left'),
          },
        };
      },
      'GET /v1/nodes': () => this.nodes(),
      'POST /v1/token/rotate': async () => {
        if (!this.ca) throw new ControlError(404, NOT_CA);
        this.cluster.joinSecret = newJoinSecret();
        await this.dir.writeCluster(this.cluster);
        this.log.info('join secret rotated: earlier tokens no longer admit anyone');
        return { token: this.joinToken() };
      },
      'GET /v1/token': () => {
        const token = this.joinToken();
        if (!token) {
          throw new ControlError(404, NOT_CA);
        }
        return { token };
      },
    };
  }

  /**
   * The cluster's node registry, read through the leader (ReadIndex), beside what this node's
   * gossip sees now. Without a quorum it answers from this replica and says it may be stale.
   */
  private async nodes(): Promise<NodesResponse> {
    let consistent = true;
    // A person is waiting: a couple of seconds to confirm, then the local view, flagged.
    await this.raft?.linearizableRead(2000).catch((error: Error) => {
      consistent = false;
      this.log.debug({ reason: error.message }, 'node list served from the local replica');
    });
    const live = new Map((this.membership?.members() ?? []).map((m) => [m.id, m]));
    const recorded = new Map(this.state.list<NodeRecord>('nodes').map((o) => [o.id, o.value]));
    const ids = [...new Set([...recorded.keys(), ...live.keys()])];
    const voters = this.raft?.membership.voters ?? [];
    const learners = this.raft?.membership.learners ?? [];
    const nodes = ids.map((id): NodeRow => {
      const member = live.get(id);
      const record = recorded.get(id);
      return {
        id,
        address: member?.address ?? record?.address ?? '',
        // What gossip sees now; for a node it has never seen, what the cluster recorded.
        status:
          record?.status === 'removed'
            ? 'removed'
            : (member?.status ?? record?.status ?? 'unknown'),
        since: member ? new Date(member.since).toISOString() : null,
        version: member?.meta.version ?? record?.version ?? '',
        labels: member?.meta.labels ?? record?.labels ?? {},
        capacity: member?.meta.capacity ?? record?.capacity,
        recorded: record !== undefined,
        self: id === this.identity.nodeId,
        raft: voters.includes(id) ? 'voter' : learners.includes(id) ? 'learner' : 'none',
      };
    });
    return { consistent, nodes };
  }

  /** Docker through the engine's socket (or $DOCKER_HOST); without an engine, process tasks only. */
  private async dockerRuntime(): Promise<{ runtime?: Runtime; missing?: string }> {
    const docker = new Docker();
    try {
      await pingEngine(docker);
    } catch (error) {
      const missing = `no Docker Engine reachable on node ${this.identity.nodeId} (${(error as Error).message}); only x-mesh runtime: process services run here`;
      this.log.warn(
        { reason: (error as Error).message },
        'Docker Engine not reachable: docker services cannot run on this node',
      );
      return { missing };
    }
    const runtime = new DockerRuntime({
      docker,
      clusterId: this.cluster.clusterId,
      nodeId: this.identity.nodeId,
      hostIp: this.cluster.advertise,
      log: this.log,
    });
    return { runtime };
  }

  private raftStatus(): RaftStatus | undefined {
    const raft = this.raft?.raft;
    if (!raft) return undefined;
    return {
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commit: raft.log.committed,
      applied: raft.log.applied,
      voters: raft.membership.voters,
      learners: raft.membership.learners,
      stateDigest: this.state.digest(),
    };
  }

  private savePeersSoon(): void {
    if (this.peerSave) return;
    this.peerSave = setTimeout(() => {
      this.peerSave = undefined;
      const peers = (this.membership?.members() ?? [])
        // Dead ones too: after a crash of its own, this node rejoins through whoever is back.
        .filter((m) => m.status !== 'left' && m.id !== this.identity.nodeId)
        .map((m) => m.address);
      this.dir.writePeers(peers).catch((error: Error) => {
        this.log.warn({ reason: error.message }, 'could not save the peer cache');
      });
    }, PEER_SAVE_DELAY_MS);
  }
}

/** Why we cannot listen, in words a user can act on. */
function listenError(error: Error, host: string, port: number): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new AgentError(
      `port ${port} on ${host} is taken (another mesh agent?); choose one with --port`,
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new AgentError(`${host} is not an address of this machine; check --advertise`);
  }
  return error;
}

/** Fails before anything is written or issued, so a retry with other flags starts clean. */
function checkListenable(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(listenError(error, host, port)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

function agentLogger(nodeId: string, options: { logLevel?: string }): Logger {
  return createLogger({ nodeId, level: options.logLevel });
}

import { availableParallelism } from 'node:os';
import { joiningNode } from '../mesh/api/nodes.js';
import { JoinService } from '../mesh/join/service.js';
import type { Logger } from '../mesh/log.js';
import { Membership } from '../mesh/membership/runtime.js';
import { pollUntil } from '../mesh/poll.js';
import { MembershipSync } from '../mesh/raft/membership-sync.js';
import { RaftNode } from '../mesh/raft/node.js';
import { writeRefusal } from '../mesh/state/authorization.js';
import { ClusterState } from '../mesh/state/cluster-state.js';
import type { RequestRoute } from '../mesh/transport/listener.js';
import { Transport } from '../mesh/transport/transport.js';
import { DataPlane } from '../proxy/data-plane.js';
import { connectionBudget, raiseFdLimit } from '../proxy/host/fd-limit.js';
import { DEFAULT_HTTP_LIMITS, DEFAULT_RESPONSE_TIMEOUT_MS } from '../proxy/http/limits.js';
import { LATENCY_BUCKETS_MS } from '../proxy/http/metrics.js';
import { DEFAULT_UDP_IDLE_MS } from '../proxy/l4/udp-flows.js';
import { Autoscaler } from './autoscaler/autoscaler.js';
import { UsageSampler } from './autoscaler/usage-sampler.js';
import { Backups } from './cluster/backup.js';
import { Certificates } from './cluster/ingress-certificates.js';
import { ClusterLogs } from './cluster/logs.js';
import { Nodes } from './cluster/nodes.js';
import { Operators } from './cluster/operators.js';
import { PeerCache } from './cluster/peer-cache.js';
import { RegistryLogins } from './cluster/registry-logins.js';
import { RoutingViews } from './cluster/routing-views.js';
import { Stacks } from './cluster/stacks.js';
import { StateAccess } from './cluster/state-access.js';
import { ClusterTraffic } from './cluster/traffic.js';
import { clusterRoutes } from './control/cluster-routes.js';
import { routesRoute } from './control/data-plane-routes.js';
import { eventRoutes } from './control/event-routes.js';
import { operatorRoutes } from './control/operator-routes.js';
import { registryRoutes } from './control/registry-routes.js';
import { REMOTE_PREFIX, remoteControl } from './control/remote.js';
import { ControlServer } from './control/server.js';
import { stackRoutes } from './control/stack-routes.js';
import { valueRoutes } from './control/value-routes.js';
import { metricsAddress } from './datadir.js';
import { Changes } from './events/changes.js';
import { EventFeed } from './events/feed.js';
import { admission, followAdmission, readmissionRefusal } from './identity/admission.js';
import { Authority } from './identity/authority.js';
import { CaRotation } from './identity/ca-rotation.js';
import { certificateMeta, GossipedMeta, nodeMeta, VERSION } from './identity/meta.js';
import {
  type AgentOptions,
  createCluster,
  joinWithToken,
  listenError,
  openRaftStorage,
  type Provisioned,
  reopen,
} from './identity/provision.js';
import { CertificateRenewal, checkCertificateLife } from './identity/renewal.js';
import { Lifecycle } from './lifecycle.js';
import { NodeMetrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/server.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { Reconciler } from './reconciler/reconciler.js';
import { Runtimes } from './runtime/runtimes.js';
import { DEFAULT_SCHEDULER_OPTIONS } from './scheduler/scheduler.js';
import { Autolock } from './secrets/autolock.js';
import { TaskFiles } from './secrets/files.js';
import { encodeUnlockKey } from './secrets/key-file.js';
import { Keyring } from './secrets/keyring.js';
import { StoredValues } from './secrets/values.js';

export const DEFAULT_PORT = 7946;
/** How long the cluster keeps the tasks of a node stopped to restart (SIGHUP): the CLI says it. */
export { RESTART_GRACE_MS } from './scheduler/scheduler.js';
export const DEFAULT_DNS_PORT = 53;
export const DEFAULT_HTTP_PORT = 80;
export const DEFAULT_HTTPS_PORT = 443;

/** The parts a started agent's own methods use (leaving, tokens, what it lacks). */
interface Parts {
  state: ClusterState;
  meta: GossipedMeta;
  membership: Membership;
  raft: RaftNode;
  reconciler: Reconciler;
  runtimes: Runtimes;
  dataPlane: DataPlane;
  files: TaskFiles;
  authority: Authority;
}

/** How long one step of leaving the cluster may take (each has tighter timers of its own). */
const LEAVE_STEP_MS = 20_000;
/** How long a node stopping to restart waits for the cluster to record that it restarts. */
const RESTART_NOTICE_MS = 5000;

/**
 * The node daemon, wired together: identity and transport, membership and Raft over it, the
 * replicated state they keep, the orchestrator and reconciler that act on it, and the control
 * API for the CLI. Each part lives in the file that owns its concern; this is only the wiring.
 */
export class Agent {
  readonly log: Logger;
  readonly nodeId: string;
  readonly address: string;
  private parts: Parts | undefined;
  /** Everything started, to stop in reverse order. */
  private readonly lifecycle: Lifecycle;

  private constructor(private readonly provisioned: Provisioned) {
    const { cluster, identity, log } = provisioned;
    this.log = log;
    this.nodeId = identity.nodeId;
    this.address = `${cluster.advertise}:${cluster.port}`;
    this.lifecycle = new Lifecycle(log);
  }

  /** Creates a cluster: its CA, this node's identity, and a join secret. */
  static async init(options: AgentOptions): Promise<Agent> {
    return Agent.run(await createCluster(options));
  }

  /** Joins the cluster a token names: pins its CA, proves the secret, receives a certificate. */
  static async join(tokenText: string, options: AgentOptions): Promise<Agent> {
    return Agent.run(await joinWithToken(tokenText, options));
  }

  /** Starts again from a data dir: same identity, rejoining through known peers and seeds. */
  static async restart(
    options: Pick<AgentOptions, 'dataDir' | 'logLevel' | 'logFormat' | 'forceNewCluster'>,
  ): Promise<Agent> {
    return Agent.run(await reopen(options), options.forceNewCluster === true);
  }

  /**
   * `mesh init|join --install`: the node made in its data dir (a cluster created, or joined), not
   * started: its service unit starts it with `mesh agent`, as a restart from the data dir.
   */
  static async prepare(
    how: { init: AgentOptions } | { join: AgentOptions; token: string },
  ): Promise<Prepared> {
    const provisioned =
      'init' in how ? await createCluster(how.init) : await joinWithToken(how.token, how.join);
    const { cluster, dir, unlockKey } = provisioned;
    return {
      nodeId: cluster.nodeId,
      clusterId: cluster.clusterId,
      address: `${cluster.advertise}:${cluster.port}`,
      dataDir: dir.path,
      ...(unlockKey && { unlockKey: encodeUnlockKey(unlockKey) }),
    };
  }

  private static async run(provisioned: Provisioned, forceNewCluster = false): Promise<Agent> {
    const agent = new Agent(provisioned);
    agent.parts = await agent.start(forceNewCluster);
    return agent;
  }

  /** `mesh join` on a member's data dir: it came back as the same node. */
  get returned(): boolean {
    return this.provisioned.returned === true;
  }

  /** A token for joining this cluster, right away on the node that made it. */
  async joinToken(): Promise<string | undefined> {
    return this.parts?.authority.token();
  }

  /** `mesh init --autolock`: the unlock key, as a person types it. */
  get unlockKey(): string | undefined {
    const key = this.provisioned.unlockKey;
    return key && encodeUnlockKey(key);
  }

  /** What this node lacks to serve service addresses and DNS, when it does. */
  get hostPrivilegesMissing(): string | undefined {
    return this.parts?.dataPlane.privilegesMissing;
  }

  /** Why this node cannot run Docker tasks, when it cannot. */
  get dockerMissing(): string | undefined {
    return this.parts?.runtimes.missing.get('docker');
  }

  /**
   * Leaves the cluster gracefully (others see "left", not "dead", and start its tasks elsewhere),
   * stops every task it runs, and stops.
   */
  async shutdown(): Promise<void> {
    this.log.info('leaving the cluster');
    const parts = this.parts;
    if (!parts) return;
    parts.dataPlane.withdraw();
    await this.leaveStep('handing Raft leadership over', parts.raft.handOver());
    await this.leaveStep('telling the members', parts.membership.leave());
    // Bounded by the tasks' own stop grace periods, which may be long (a database's).
    await parts.reconciler.removeAll();
    await this.leaveStep('unmounting the secrets', parts.files.unmount());
    await this.leaveStep('closing listeners and connections', this.stop());
  }

  /**
   * Stops to start again (SIGHUP, `systemctl reload`: an upgrade): its tasks keep running, and the
   * cluster, told it restarts, keeps them on this node for the restart grace rather than place them
   * elsewhere after the reschedule grace. It hands Raft leadership over, and its data plane stops
   * as on any stop (the host's service addresses and routes go with the last agent of the host).
   * The next run takes the tasks back as they are.
   */
  async stopForRestart(): Promise<void> {
    this.log.info('stopping to restart: the tasks keep running');
    const parts = this.parts;
    if (!parts) return;
    parts.dataPlane.withdraw();
    await this.announceRestart(parts);
    await this.leaveStep('handing Raft leadership over', parts.raft.handOver());
    await this.leaveStep('closing listeners and connections', this.stop());
  }

  /** Gossips that this node restarts, and waits (bounded) for the leader to record it. */
  private async announceRestart({ meta, state }: Parts): Promise<void> {
    const { nodeId } = this.provisioned.identity;
    meta.update({ restarting: true });
    const recorded = await pollUntil(() => state.get('nodes', nodeId)?.value.restarting === true, {
      timeoutMs: RESTART_NOTICE_MS,
      intervalMs: 50,
    });
    if (!recorded)
      this.log.warn(
        { waitedMs: RESTART_NOTICE_MS },
        'the cluster did not record the restart (no leader?): if this node is away longer than the reschedule grace, its tasks are placed elsewhere',
      );
  }

  /**
   * A step of leaving, bounded: each is meant to end by itself within its own timers; one that
   * does not is logged and left behind, so that a stop always ends.
   */
  private async leaveStep(step: string, work: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.error(
          { step, afterMs: LEAVE_STEP_MS },
          'leaving: a step takes too long, going on',
        );
        resolve();
      }, LEAVE_STEP_MS);
    });
    await Promise.race([work, late]);
    clearTimeout(timer);
  }

  /** Stops without a word to the cluster, as a crash would: every part, last started first. */
  async stop(): Promise<void> {
    await this.lifecycle.stopAll();
  }

  /** Starts every part in order; one that fails stops those started before it. */
  private async start(forceNewCluster: boolean): Promise<Parts> {
    try {
      return await this.startParts(forceNewCluster);
    } catch (error) {
      await this.lifecycle.stopAll();
      throw error;
    }
  }

  /**
   * The node's link to its cluster: its Raft storage and runtimes, the transport listening, and
   * membership and Raft over it (not started yet), with the replica they keep.
   */
  private async connect(forceNewCluster: boolean): Promise<Connected> {
    const { lifecycle } = this;
    const { dir, cluster, identity, log } = this.provisioned;
    const state = new ClusterState();
    const storage = openRaftStorage(this.provisioned, forceNewCluster);
    checkCertificateLife(identity, storage.voters, dir.path, log);
    const fds = await raiseFdLimit();
    if (fds.failure)
      log.warn({ limit: fds.limit, reason: fds.failure }, 'could not raise the open-files limit');
    else log.info({ limit: fds.limit }, 'open-files limit');
    // Before listening, so that peers never meet a node that answers but does not gossip yet.
    // Gossiped with the node's metadata: the scheduler gives Docker tasks only to nodes with an engine.
    const runtimes = await Runtimes.open({
      clusterId: cluster.clusterId,
      nodeId: identity.nodeId,
      hostIp: cluster.advertise,
      tasksDir: dir.tasksDir,
      log,
    });
    lifecycle.add('runtimes', () => runtimes.close());
    // Joins and inbound connections may arrive before the rest is wired: they see it once it is.
    const late: LateParts = {};
    const join = joinService(state, late, log);
    const transport = new Transport({
      identity,
      host: cluster.advertise,
      port: cluster.port,
      log,
      join,
      requests: {
        prefix: `${REMOTE_PREFIX}/`,
        accept: (request, response) =>
          late.remote
            ? late.remote.accept(request, response)
            : response.writeHead(503).end('{"error":"this node is starting"}'),
      },
      admission: admission(state, () => late.raft?.isCurrent() ?? false),
    });
    await lifecycle.start(
      'transport',
      () =>
        transport.listen().catch((error: Error) => {
          throw listenError(error, cluster.advertise, cluster.port);
        }),
      () => transport.close(),
    );
    // What this node gossips about itself; a renewed certificate, an unserved port or an engine
    // that came up after the agent changes it.
    const meta = new GossipedMeta(
      nodeMeta(this.address, cluster.labels, identity, runtimes.kinds()),
    );
    const membership = new Membership({ transport, log, meta: meta.current });
    meta.publishTo((changed) => membership.updateMeta(changed));
    lifecycle.add('admission', followAdmission(state, transport, membership, identity.nodeId, log));
    runtimes.onAdded(() => meta.update({ runtimes: runtimes.kinds() }));
    const raft: RaftNode = new RaftNode({
      transport,
      storage,
      machine: state,
      log,
      // Gossip's address, else the one the cluster recorded: a message to a voter gossip has
      // not (re)learned yet, just after a restart, still goes out rather than being dropped.
      addressOf: (id) =>
        membership.members().find((m) => m.id === id)?.address ??
        (state.get('nodes', id)?.value.address || undefined),
      authorize: (sender, command) => writeRefusal(sender, command, state, raft.membership.voters),
    });
    const access = new StateAccess(state, raft, log);
    Object.assign(late, { access, raft });
    return { state, fds, runtimes, late, transport, meta, membership, raft, access };
  }

  private async startParts(forceNewCluster: boolean): Promise<Parts> {
    const { dir, log, seeds } = this.provisioned;
    const connected = await this.connect(forceNewCluster);
    const { state, meta, runtimes, transport, membership, raft } = connected;
    const keys = this.keyParts(connected);
    const work = this.workParts(connected, keys);
    const { keyring, autolock, authority, renewal, rotation } = keys;
    const { dataPlane, certificates, sync, orchestrator, autoscaler, sampler, reconciler } = work;
    const { control, events, changes, metrics, metricsAt } = this.operatorParts(
      connected,
      keys,
      work,
    );
    // Started in this order, stopped in the reverse one.
    const ordered: Part[] = [
      [
        'control API',
        { start: () => control.listen(dir.controlSocket), stop: () => control.close() },
      ],
      ...(metrics ? [['metrics', metrics] satisfies Part] : []),
      ['events', events],
      ['changes', changes],
      ['data plane', dataPlane],
      ['peer cache', work.peers],
      [
        'membership',
        {
          start: () => membership.start(seeds.filter((seed) => seed !== this.address)),
          stop: () => membership.stop(),
        },
      ],
      [
        'raft',
        {
          start: () => {
            raft.start();
            // The replica is restored now: what was admitted before it was is looked at again.
            transport.recheck();
          },
          stop: () => raft.stop(),
        },
      ],
      ['membership sync', sync],
      ['orchestrator', orchestrator],
      ['keyring', keyring],
      ['autolock', autolock],
      ['authority', authority],
      ['certificate renewal', renewal],
      ['CA rotation', rotation],
      ['ingress certificates', certificates],
      ['reconciler', reconciler],
      ['autoscaler', autoscaler],
      ['usage sampler', sampler],
    ];
    for (const [name, part] of ordered)
      await this.lifecycle.start(
        name,
        () => part.start(),
        () => part.stop(),
      );
    log.info(
      { address: this.address, seeds, metrics: metricsAt, version: VERSION },
      'agent started',
    );
    return {
      state,
      meta,
      membership,
      raft,
      reconciler,
      runtimes,
      dataPlane,
      files: work.files,
      authority,
    };
  }

  /**
   * What operators reach: the control API (on the local socket, and over mTLS for operators
   * elsewhere), the events feed and /metrics. None started yet.
   */
  private operatorParts(connected: Connected, keys: KeyParts, work: WorkParts) {
    const { cluster, identity, log } = this.provisioned;
    const { state, raft, access } = connected;
    const stacks = new Stacks(access, keys.values);
    const events = new EventFeed({ state, raft, log });
    const changes = new Changes({ state, feed: events, membership: connected.membership });
    const operators = new Operators({
      nodeId: identity.nodeId,
      clusterId: cluster.clusterId,
      state,
      access,
      authority: keys.authority,
    });
    const control = controlServer({
      ...connected,
      ...keys,
      ...work,
      self: { nodeId: identity.nodeId, clusterId: cluster.clusterId, address: this.address },
      stacks,
      events,
      changes,
      operators,
      log,
    });
    connected.late.remote = remoteControl(control, operators, log);
    const metricsAt = metricsAddress(cluster);
    const metrics = metricsAt
      ? new MetricsServer(metricsAt, new NodeMetrics({ ...connected, ...work, stacks }), log)
      : undefined;
    return { control, events, changes, metrics, metricsAt };
  }

  /** The keys the node holds and what they sign and seal: none started yet. */
  private keyParts({ state, late, transport, meta, membership, raft, access }: Connected) {
    const { dir, cluster, identity, ca, log } = this.provisioned;
    const keyring = new Keyring({
      nodeId: identity.nodeId,
      dataDir: dir.path,
      state,
      raft,
      access,
      transport,
      log,
      mayHold: () =>
        !cluster.workerOnly && state.get('nodes', identity.nodeId)?.value.status !== 'removed',
      onHeld: (votersKey) => meta.update({ votersKey }),
      ...(this.provisioned.unlockKey && { unlockKey: this.provisioned.unlockKey }),
    });
    const autolock = new Autolock({ keyring, state, raft, access, transport, log });
    const values = new StoredValues(access, keyring);
    const authority = new Authority({
      dir,
      cluster,
      ca,
      address: this.address,
      state,
      raft,
      access,
      keyring,
      transport,
      log,
    });
    late.authority = authority;
    const renewal = new CertificateRenewal({
      identity,
      dir,
      authority,
      raft,
      state,
      transport,
      onRenewed: (renewed) => meta.update(certificateMeta(renewed)),
      log,
    });
    const rotation = new CaRotation({
      clusterId: cluster.clusterId,
      authority,
      keyring,
      access,
      state,
      raft,
      membership,
      log,
    });
    return { keyring, autolock, values, authority, renewal, rotation };
  }

  /** What the node runs and serves, and the leader's loops: none started yet. */
  private workParts(connected: Connected, { keyring }: KeyParts) {
    const { state, fds, runtimes, transport, meta, membership, raft, access } = connected;
    const { dir, cluster, identity, log } = this.provisioned;
    const nodeId = identity.nodeId;
    const files = new TaskFiles({ nodeId, state, raft, transport, keyring, log });
    const rescheduleAfterMs =
      cluster.rescheduleAfterMs ?? DEFAULT_SCHEDULER_OPTIONS.rescheduleAfterMs;
    const certificates = new Certificates({ nodeId, access, keyring, raft, transport, log });
    const registries = new RegistryLogins({
      nodeId,
      access,
      keyring,
      raft,
      transport,
      checkLogin: () => runtimes.loginCheck(),
      log,
    });
    const dataPlane = dataPlaneOf(this.provisioned, {
      maxConnections: connectionBudget(fds.limit),
      state,
      membership,
      transport,
      runtimes,
      certificates,
      meta,
    });
    const sync = new MembershipSync(
      raft,
      membership,
      state,
      log,
      (member) =>
        member.meta.votersKey !== undefined && member.meta.votersKey === keyring.wantedKeyId(),
    );
    const orchestrator = new Orchestrator(
      raft,
      state,
      log,
      { ...DEFAULT_SCHEDULER_OPTIONS, rescheduleAfterMs },
      cluster.network,
    );
    const views = new RoutingViews(nodeId, state, transport, (index, maxWaitMs) =>
      dataPlane.routesAsOf(index, maxWaitMs),
    );
    const reconciler = new Reconciler({
      nodeId,
      state,
      propose: (command) => access.propose(command),
      runtimes,
      routesAsOf: (index, maxWaitMs) => views.asOf(index, maxWaitMs),
      caughtUp: () => raft.linearizableRead(5000),
      leaderSilenceMs: () => raft.leaderSilenceMs(),
      cutOffAfterMs: rescheduleAfterMs / 2,
      files,
      registryAuth: (task, service) => registries.authFor(task, service),
      log,
    });
    const peers = new PeerCache(dir, membership, nodeId, log);
    const autoscaler = new Autoscaler({ nodeId, raft, state, transport, log });
    const sampler = new UsageSampler({
      nodeId,
      state,
      runtimes,
      served: () => dataPlane.servedByService(),
      deliver: (report) => autoscaler.deliver(report),
      log,
    });
    return {
      files,
      certificates,
      registries,
      dataPlane,
      sync,
      orchestrator,
      autoscaler,
      sampler,
      reconciler,
      peers,
    };
  }
}

/** A node made in its data dir and not started (Agent.prepare). */
export interface Prepared {
  nodeId: string;
  clusterId: string;
  address: string;
  dataDir: string;
  /** `--autolock`: the unlock key, as a person types it. */
  unlockKey?: string;
}

type KeyParts = ReturnType<Agent['keyParts']>;
type WorkParts = ReturnType<Agent['workParts']>;

/** A part of the agent, by name, as the start-up list holds it. */
type Part = [string, { start(): unknown; stop(): unknown }];

/** The node linked to its cluster (see Agent.connect). */
interface Connected {
  state: ClusterState;
  fds: Awaited<ReturnType<typeof raiseFdLimit>>;
  runtimes: Runtimes;
  late: LateParts;
  transport: Transport;
  meta: GossipedMeta;
  membership: Membership;
  raft: RaftNode;
  access: StateAccess;
}

/** What joiners meet before the rest of the node is wired: parts filled in as they exist. */
interface LateParts {
  access?: StateAccess;
  authority?: Authority;
  raft?: RaftNode;
  /** The operators' control API (remote.ts), once the control server exists. */
  remote?: RequestRoute;
}

/**
 * Every node answers joiners; only a voter can sign, the others say so (the joiner tries the
 * token's next seed).
 */
function joinService(state: ClusterState, late: LateParts, log: Logger): JoinService {
  const authority = () => {
    if (!late.authority) throw new Error('this node is still starting');
    return late.authority;
  };
  return new JoinService({
    ca: () => authority().ca(),
    secrets: () => authority().secrets(),
    validDays: () => late.authority?.validDays(),
    log,
    register: async ({ nodeId, serial, notAfter, workerOnly }) => {
      if (!late.access) throw new Error('this node is still starting');
      const record = joiningNode(serial, notAfter, Date.now(), workerOnly);
      await late.access.create('nodes', nodeId, record);
    },
    issuers: () => late.authority?.issuers() ?? [],
    voters: () => late.raft?.membership.voters ?? [],
    readmit: async ({ nodeId, serial, notAfter }) => {
      const refusal = readmissionRefusal(nodeId, state);
      if (refusal) throw new Error(refusal);
      // The certificate it came back without is retired at once.
      await authority().recordIssued(nodeId, { serial, notAfter }, 0);
    },
  });
}

/** The data plane (DNS, service addresses, L4, the HTTP ingress) with the node's settings. */
function dataPlaneOf(
  { cluster, identity, log }: Provisioned,
  parts: {
    maxConnections: number;
    state: ClusterState;
    membership: Membership;
    transport: Transport;
    runtimes: Runtimes;
    certificates: Certificates;
    meta: GossipedMeta;
  },
): DataPlane {
  const { state, membership, transport, runtimes, certificates, meta } = parts;
  return new DataPlane({
    nodeId: identity.nodeId,
    clusterId: cluster.clusterId,
    advertise: cluster.advertise,
    dnsPort: cluster.dnsPort ?? DEFAULT_DNS_PORT,
    httpPort: cluster.httpPort ?? DEFAULT_HTTP_PORT,
    httpsPort: cluster.httpsPort ?? DEFAULT_HTTPS_PORT,
    keyPairOf: (host) => certificates.keyPair(host),
    trustedProxies: cluster.trustedProxies ?? [],
    responseTimeoutMs: cluster.httpTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    udpIdleMs: cluster.udpTimeoutMs ?? DEFAULT_UDP_IDLE_MS,
    httpLimits: { ...DEFAULT_HTTP_LIMITS, ...cluster.httpLimits },
    ingressWorkers: cluster.ingressWorkers ?? availableParallelism(),
    maxConnections: parts.maxConnections,
    upstreams: cluster.dnsUpstreams,
    state,
    members: () => membership.members(),
    onMembersChange: (listener) => membership.on('change', listener),
    openStream: (to, target, asOf) => transport.openStream(to, target, asOf),
    serveStreams: (handler) => transport.serveStreams(handler),
    trust: {
      identity: () => transport.identity,
      refusal: (peer) => transport.refusal(peer),
      onChange: (listener) => transport.onTrustChange(listener),
    },
    hostNetworks: () => runtimes.hostNetworks(),
    onPorts: (ports) => meta.update(ports),
    log,
  });
}

/** The control API for the CLI: every route, by subject. */
function controlServer(parts: {
  self: { nodeId: string; clusterId: string; address: string };
  state: ClusterState;
  raft: RaftNode;
  access: StateAccess;
  keyring: Keyring;
  membership: Membership;
  transport: Transport;
  runtimes: Runtimes;
  authority: Authority;
  autolock: Autolock;
  rotation: CaRotation;
  values: StoredValues;
  stacks: Stacks;
  events: EventFeed;
  changes: Changes;
  operators: Operators;
  registries: RegistryLogins;
  certificates: Certificates;
  dataPlane: DataPlane;
  log: Logger;
}): ControlServer {
  const { self, state, raft, access, keyring, membership, transport, stacks, log } = parts;
  const nodes = new Nodes(access, self.nodeId, membership, raft);
  return new ControlServer(
    {
      ...clusterRoutes({
        self,
        membership,
        raft,
        state,
        nodes,
        tokens: parts.authority,
        rotation: parts.rotation,
        autolock: parts.autolock,
        backups: new Backups({ clusterId: self.clusterId, state, raft, keyring, transport, log }),
      }),
      ...stackRoutes(
        stacks,
        nodes,
        new ClusterLogs(self.nodeId, state, transport, parts.runtimes, stacks),
        access,
      ),
      ...routesRoute(
        self.nodeId,
        parts.dataPlane,
        parts.certificates,
        new ClusterTraffic(
          self.nodeId,
          state,
          transport,
          (service) => parts.dataPlane.ingressStats(service),
          LATENCY_BUCKETS_MS,
        ),
      ),
      ...valueRoutes(parts.values),
      ...registryRoutes(parts.registries),
      ...eventRoutes(parts.events, parts.changes),
      ...operatorRoutes(parts.operators),
    },
    log,
  );
}

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CertificateRecord } from '../mesh/api/certificates.js';
import { dnsAddress, type NetworkSettings } from '../mesh/api/network.js';
import type { IngressState, UnservedPort } from '../mesh/api/nodes.js';
import { LimitedLog } from '../mesh/limited-log.js';
import type { Member } from '../mesh/membership/state.js';
import type { NodeIdentity } from '../mesh/pki/identity.js';
import { RunAgain } from '../mesh/run-again.js';
import type { ClusterState } from '../mesh/state/cluster-state.js';
import type { Admission } from '../mesh/transport/tls.js';
import type { IncomingStream } from '../mesh/transport/tunnel-server.js';
import { hostResolvers, UpstreamResolvers } from './dns/forward.js';
import { DnsServer } from './dns/server.js';
import { buildZone, type Zone } from './dns/zone.js';
import { HostAddresses, PRIVILEGE_HINT } from './host/addresses.js';
import { HostOwnership } from './host/ownership.js';
import { privilegesMissing } from './host/privileges.js';
import { IngressWorkers } from './http/ingress-workers.js';
import type { HttpLimits } from './http/limits.js';
import type { HttpRelay } from './http/relay.js';
import { hostRoutes } from './http/routes.js';
import type { KeyPairOf } from './http/servers.js';
import { tunnelGrant } from './http/worker-tunnels.js';
import { dialEndpoint, Forwarder } from './l4/forwarder.js';
import {
  type Accept,
  type Listeners,
  type Receive,
  tcpListeners,
  udpListeners,
} from './l4/listeners.js';
import { splice } from './l4/splice.js';
import { type DatagramSource, serveRemoteFlow, UdpForwarder } from './l4/udp-forwarder.js';
import {
  type IngressPort,
  publishedAddress,
  type RoutingTable,
  routingTable,
  type ServiceRoute,
} from './routing-table.js';
import { type HostNetworks, mayReach, plainAddress, SourcePolicy } from './source-policy.js';
import { formatStreamTarget, parseStreamTarget, type StreamTarget } from './stream-target.js';
import { ViewIndex } from './view-index.js';

/** Containers send DNS queries to the DNS address on the standard port. */
const CONTAINER_DNS_PORT = 53;
/**
 * How long a stream for a task this node's view does not list waits for the view to reach the
 * asker's: a heartbeat or two, the lag between the leader's replica and the others'.
 */
const VIEW_CATCH_UP_MS = 1000;
/** Bridges are listed again (for a new task, an unknown source) at most this often. */
const BRIDGE_LISTING_SPACING_MS = 100;

/** The listeners one pass of the data plane wants, by host:port. */
interface Wanted {
  tcp: Map<string, Accept>;
  udp: Map<string, Receive>;
}

export interface DataPlaneOptions {
  nodeId: string;
  clusterId: string;
  /** The node's address: DNS and published ports listen here. */
  advertise: string;
  /** 0: no DNS on the advertise address. */
  dnsPort: number;
  /** The HTTP ingress on the advertise address; 0: none. */
  httpPort: number;
  httpsPort: number;
  /** A certificate the cluster stores for a host, its key opened (by a voter). */
  keyPairOf: KeyPairOf;
  /** Peers whose own X-Forwarded-* headers the ingress believes (CIDRs). */
  trustedProxies: string[];
  /** How long a replica may take to start an answer. */
  responseTimeoutMs: number;
  /** How long a UDP flow is kept without a datagram either way. */
  udpIdleMs: number;
  /** What a client of the ingress may hold, and for how long. */
  httpLimits: HttpLimits;
  /** Processes serving the HTTP ingress (each with every listener). */
  ingressWorkers: number;
  /** Connections each public listener holds at most (see connectionBudget). */
  maxConnections: number;
  /** host:port of upstream resolvers; undefined: the host's (/etc/resolv.conf). */
  upstreams: string[] | undefined;
  state: ClusterState;
  members: () => Member[];
  onMembersChange: (listener: () => void) => void;
  /** Opens a stream to what another node serves, over the cluster's mTLS. */
  openStream: (
    to: { address: string; nodeId: string },
    target: string,
    asOf: number,
  ) => Promise<Duplex>;
  /** Takes streams other nodes open to this one. */
  serveStreams: (handler: (stream: IncomingStream) => void) => void;
  /**
   * What this node presents and which certificates it honours, for the ingress workers' own
   * streams to other nodes (worker-tunnels.ts); onChange: either may have changed.
   */
  trust: {
    identity: () => NodeIdentity;
    refusal: Admission;
    onChange: (listener: () => void) => void;
  };
  /**
   * The cluster's bridges on this host and the containers on them (every node's, when several
   * share the engine).
   */
  hostNetworks: () => Promise<HostNetworks>;
  /**
   * Told which published ports this node has taken up, which of them it cannot serve, and whether
   * its HTTP ingress listens, whenever that changes (for `mesh ls`, and a deploy waiting for every
   * node's word).
   */
  onPorts: (ports: PortsReport) => void;
  log: Logger;
}

/** What the data plane tells of the ports it serves (see onPorts). */
export interface PortsReport {
  published: number[];
  unserved: UnservedPort[];
  /** Absent until the ingress workers listen: they start with the first route. */
  ingress?: IngressState;
  /** The ingress ports (HTTP, HTTPS) its workers could not take, with why. */
  ingressUnserved?: UnservedPort[];
}

/**
 * The node's data plane, fed by one routing table rebuilt from the local replica whenever it or
 * membership changes: DNS on the advertise address, published ports (ingress mode) on the
 * advertise address, and — on the agent that holds this host's part — the service addresses on
 * lo with their listeners and the DNS address containers use. It never writes cluster state.
 */
export class DataPlane {
  private table: RoutingTable;
  private zone: Zone;
  private serial = 1;
  private readonly policy: SourcePolicy;
  private readonly dns: DnsServer;
  private readonly forwarder: Forwarder;
  private readonly udpForwarder: UdpForwarder;
  private readonly listeners: Listeners<Accept>;
  private readonly udpListeners: Listeners<Receive>;
  /** The published ports' listeners (host:port, and host:port/udp) this node wants, each to its port. */
  private readonly publishedKeys = new Map<string, number>();
  private readonly host = new HostAddresses();
  private readonly ownership: HostOwnership;
  private readonly ingress: IngressWorkers;
  /**
   * This node's end of other nodes' ingress, made at its first stream: it holds undici (10 MB),
   * which a node that no other node's ingress reaches never needs.
   */
  private relay: Promise<HttpRelay | undefined> | undefined;
  private unwatch: (() => void) | undefined;
  private rebuildQueued = false;
  private readonly view = new ViewIndex(VIEW_CATCH_UP_MS);
  /** The last grant the ingress workers were sent, as text (see grantTunnels). */
  private tunnelsGranted: string | undefined;
  private readonly passes = new RunAgain(
    () => (this.stopped ? Promise.resolve() : this.applyOnce()),
    (error) => this.options.log.warn({ err: error }, 'data plane not updated'),
  );
  private stopped = false;
  /** Why this host's part is not served, once found out (no privileges): said once, not retried. */
  private hostRefusal: string | undefined;
  /** The ingress ports its workers could not take, with why; undefined until they listen. */
  private ingressRefused: UnservedPort[] | undefined;
  /** The last report made through onPorts, as text (nothing made yet: the empty report). */
  private portsReported = JSON.stringify({ published: [], unserved: [] });
  private lastListingAt = 0;
  private nextListing: Promise<void> | undefined;
  /** Refused sources, a line a minute each: a container may retry a connection in a loop. */
  private readonly refusals: LimitedLog;

  constructor(private readonly options: DataPlaneOptions) {
    this.policy = new SourcePolicy(new Set([options.advertise]));
    this.refusals = new LimitedLog(options.log, 1);
    this.table = this.build();
    this.view.reached(options.state.appliedIndex);
    this.zone = buildZone(this.table, this.serial);
    this.policy.setServiceRange(this.table.settings?.serviceRange);
    this.forwarder = new Forwarder({
      nodeId: options.nodeId,
      log: options.log,
      // The far node connects to its task before it answers, within the transport's 3 s: a far
      // node that hangs must not hold a client longer before another replica is tried (an 11 s
      // wait here failed the soak test in CI, a connection unanswered in 10 s after a kill).
      dialRemote: (nodeId, taskId, port) => this.streamTo(nodeId, { kind: 'tcp', taskId, port }),
    });
    this.udpForwarder = new UdpForwarder({
      nodeId: options.nodeId,
      idleMs: options.udpIdleMs,
      log: options.log,
      dialRemote: (nodeId, taskId, port) => this.streamTo(nodeId, { kind: 'udp', taskId, port }),
    });
    this.dns = new DnsServer({
      zone: () => this.zone,
      allowed: (ip) => this.policy.classify(ip).kind !== 'outside',
      recheck: async (ip) => (await this.sourceOf(ip)).kind !== 'outside',
      upstreams: new UpstreamResolvers(
        options.upstreams ?? hostResolvers(new Set([options.advertise])),
        options.log,
      ),
      maxConnections: options.maxConnections,
      log: options.log,
    });
    this.listeners = tcpListeners(options.log, options.maxConnections);
    this.udpListeners = udpListeners(options.log);
    // The HTTP ingress runs in processes of its own; a replica elsewhere is reached through that
    // node's relay, over streams the workers open themselves.
    this.ingress = new IngressWorkers({
      workers: options.ingressWorkers,
      settings: {
        nodeId: options.nodeId,
        advertise: options.advertise,
        httpPort: options.httpPort,
        httpsPort: options.httpsPort,
        trustedProxies: options.trustedProxies,
        responseTimeoutMs: options.responseTimeoutMs,
        limits: options.httpLimits,
        maxConnections: options.maxConnections,
      },
      keyPairOf: options.keyPairOf,
      onListening: (refused) => {
        this.ingressRefused = refused;
        this.reportPorts();
      },
      log: options.log,
    });
    this.grantTunnels();
    this.ingress.setRoutes(hostRoutes(this.table), this.view.current);
    this.ingress.setCertificates(this.certificatesNow());
    this.ownership = new HostOwnership(`mesh-data-plane-${options.clusterId}`, options.log, () =>
      this.apply(),
    );
  }

  /** The routing table as this node sees it now. */
  get routes(): RoutingTable {
    return this.table;
  }

  private httpRelay(): Promise<HttpRelay | undefined> {
    this.relay ??= import('./http/relay.js').then(
      ({ HttpRelay }) =>
        new HttpRelay(
          (endpoint, target) => dialEndpoint(endpoint, target),
          this.options.responseTimeoutMs,
          this.options.log,
        ),
      (error: Error) => {
        // A broken install: this stream is refused, and the next one tries again.
        this.relay = undefined;
        this.options.log.error({ err: error }, 'the HTTP relay could not be loaded');
        return undefined;
      },
    );
    return this.relay;
  }

  /** What this node's HTTP ingress saw of a service. */
  ingressStats(serviceId: string) {
    return this.ingress.stats(serviceId);
  }

  /**
   * What this node served per service since it started (or its ingress workers last did):
   * requests through the HTTP ingress plus connections through the routing mesh. Autoscaling
   * turns it into a rate.
   */
  async servedByService(): Promise<Map<string, number>> {
    const served = new Map(Object.entries(await this.ingress.requests()));
    for (const { labels, value } of this.forwarder.counts.connections.entries())
      if (labels.outcome === 'forwarded')
        served.set(labels.service, (served.get(labels.service) ?? 0) + value);
    return served;
  }

  /**
   * Waits, `maxWaitMs` at most, until this node routes as of cluster state index `index`: its
   * table (DNS, service addresses, published ports) and each HTTP ingress worker. Resolves with
   * why not, if it does not by then (undefined: it does).
   */
  async routesAsOf(index: number, maxWaitMs: number): Promise<string | undefined> {
    const deadline = Date.now() + maxWaitMs;
    await this.view.until(index, maxWaitMs);
    if (this.view.current < index)
      return `its routes are as of state index ${this.view.current}, not ${index}`;
    if (!(await this.ingress.holdLatestRoutes(Math.max(1, deadline - Date.now()))))
      return 'an HTTP ingress worker did not say it holds the latest routes';
    return undefined;
  }

  /** The HTTP ingress's metrics, in the Prometheus text format (summed over its workers). */
  ingressMetrics(): Promise<string> {
    return this.ingress.metrics();
  }

  /** What DNS answered and L4 forwarded since the agent started. */
  get counts() {
    return { dns: this.dns.counts, l4: this.forwarder.counts };
  }

  /** What this process lacks to serve service addresses and DNS (checked at start). */
  readonly privilegesMissing = privilegesMissing();

  /** Addresses this node should serve but cannot (a port taken), with the reason. */
  get notServed(): ReadonlyMap<string, string> {
    return new Map([
      ...this.listeners.failed,
      ...[...this.udpListeners.failed].map(([key, reason]): [string, string] => [
        `${key}/udp`,
        reason,
      ]),
    ]);
  }

  async start(): Promise<void> {
    const { state, log, advertise, dnsPort } = this.options;
    if (this.privilegesMissing) log.error(this.privilegesMissing);
    this.unwatch = state.watch((change) => {
      if (change.kind === 'certificates') this.ingress.setCertificates(this.certificatesNow());
      else if (!['nodes', 'stacks', 'secrets', 'autoscaling'].includes(change.kind))
        this.rebuildSoon();
      // A change the table does not show leaves it as of this index; one it shows, once rebuilt.
      if (!this.rebuildQueued) this.view.reached(state.appliedIndex);
    });
    this.options.onMembersChange(() => this.rebuildSoon());
    this.options.trust.onChange(() => this.grantTunnels());
    this.options.serveStreams((stream) => void this.serveStream(stream));
    if (dnsPort > 0)
      await this.dns
        .listen(advertise, dnsPort)
        .catch((error: Error) =>
          log.error(
            { address: `${advertise}:${dnsPort}`, reason: error.message, fix: PRIVILEGE_HINT },
            'DNS not served on the node address',
          ),
        );
    if (this.options.httpPort > 0 || this.options.httpsPort > 0) await this.ingress.start();
    this.ownership.start();
    this.apply();
  }

  /**
   * The agent is leaving: it keeps serving what it serves until it stops, but takes nothing over
   * from another agent of this host meanwhile, so the last one to stop removes the addresses.
   */
  withdraw(): void {
    this.ownership.withdraw();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.view.close();
    await this.passes.idle();
    this.listeners.close();
    this.udpListeners.close();
    this.udpForwarder.close();
    await this.ingress.close();
    (await this.relay)?.close();
    this.dns.close();
    // The next agent of this host takes the addresses over as they are; the last one removes them.
    if (this.ownership.owned && !this.ownership.othersWaiting && !this.hostRefusal)
      await this.host
        .remove()
        .catch((error: Error) =>
          this.options.log.warn({ reason: error.message }, 'service addresses not removed'),
        );
    this.ownership.stop();
  }

  /** Tells the ingress workers what their streams to other nodes need, when that changed. */
  private grantTunnels(): void {
    const { trust, members, state } = this.options;
    const grant = tunnelGrant(
      trust.identity(),
      members(),
      (nodeId) => state.get('nodes', nodeId)?.value,
      trust.refusal,
    );
    const { certPem, caCertPem, chainPem } = grant.identity;
    const said = JSON.stringify([
      certPem,
      caCertPem,
      chainPem,
      [...grant.peers].map(([id, p]) => [id, p.address, [...p.recorded], p.unrecorded]),
    ]);
    if (said === this.tunnelsGranted) return;
    this.tunnelsGranted = said;
    this.ingress.setTunnels(grant);
  }

  private certificatesNow(): ReadonlyMap<string, CertificateRecord> {
    return new Map(this.options.state.list('certificates').map((c) => [c.id, c.value]));
  }

  /** The table from the replica and membership as they are now (pure: routing-table.ts). */
  private build(): RoutingTable {
    const { state, members, nodeId } = this.options;
    const alive = new Set(
      members()
        .filter((m) => m.status === 'alive' || m.status === 'suspect')
        .map((m) => m.id),
    );
    alive.add(nodeId);
    return routingTable({
      settings: state.setting('network')?.value,
      services: state.list('services').map((s) => s.value),
      addresses: new Map(state.list('addresses').map((a) => [a.id, a.value])),
      tasks: state.list('tasks').map((t) => t.value),
      statuses: new Map(state.list('statuses').map((s) => [s.id, s.value])),
      alive,
    });
  }

  /** Rebuilds once for a burst of changes (a batch applies many writes at once). */
  private rebuildSoon(): void {
    if (this.rebuildQueued || this.stopped) return;
    this.rebuildQueued = true;
    queueMicrotask(() => {
      this.rebuildQueued = false;
      this.table = this.build();
      this.view.reached(this.options.state.appliedIndex);
      this.zone = buildZone(this.table, ++this.serial);
      this.policy.setServiceRange(this.table.settings?.serviceRange);
      // The grant first: a route to a new member's replica finds the member granted.
      this.grantTunnels();
      this.ingress.setRoutes(hostRoutes(this.table), this.view.current);
      const listed = new Set(this.table.services.flatMap((s) => s.endpoints.map((e) => e.taskId)));
      this.forwarder.counters.retain(listed);
      this.udpForwarder.retain(listed);
      void this.relay?.then((relay) => relay?.retain(listed));
      this.apply();
    });
  }

  /** Brings listeners and host addresses in line with the table, one pass at a time. */
  private apply(): void {
    this.passes.request();
  }

  private async applyOnce(): Promise<void> {
    const { advertise } = this.options;
    const table = this.table;
    const wanted: Wanted = { tcp: new Map(), udp: new Map() };
    this.publishedKeys.clear();
    for (const ingress of table.ingress) {
      const address = publishedAddress(ingress, advertise);
      if (!address) continue; // another node's address: published there only
      const key = `${address}:${ingress.port}`;
      if (ingress.protocol === 'udp') {
        this.publishedKeys.set(`${key}/udp`, ingress.port);
        wanted.udp.set(key, (payload, from, reply) =>
          this.receivePublished(key, ingress.port, { ...from, reply }, payload),
        );
      } else {
        this.publishedKeys.set(key, ingress.port);
        wanted.tcp.set(key, (socket) => this.acceptPublished(socket, ingress.port));
      }
    }
    if (this.ownership.owned && table.settings && !this.hostRefusal)
      await this.serveHost(table, table.settings, wanted);
    await Promise.all([this.listeners.sync(wanted.tcp), this.udpListeners.sync(wanted.udp)]);
    this.reportPorts();
    // New bridges and containers come with new tasks.
    await this.relistHostNetworks();
  }

  private reportPorts(): void {
    const unserved = [...this.notServed]
      .flatMap(([address, reason]) => {
        const port = this.publishedKeys.get(address);
        if (port === undefined) return [];
        return [{ port, reason: address.endsWith('/udp') ? `UDP: ${reason}` : reason }];
      })
      .sort((a, b) => a.port - b.port);
    const published = [...new Set(this.publishedKeys.values())].sort((a, b) => a - b);
    const report: PortsReport = { published, unserved, ...this.ingressState() };
    const text = JSON.stringify(report);
    if (text === this.portsReported) return;
    this.portsReported = text;
    this.options.onPorts(report);
  }

  private ingressState(): Pick<PortsReport, 'ingress' | 'ingressUnserved'> {
    if (this.options.httpPort === 0 && this.options.httpsPort === 0) return { ingress: 'off' };
    if (!this.ingressRefused) return {};
    return {
      ingress: 'listening',
      ...(this.ingressRefused.length > 0 && { ingressUnserved: this.ingressRefused }),
    };
  }

  /**
   * This host's part: the ranges routed unreachable first (before anything listens on or sends to
   * a service address), then the service addresses and the DNS address on lo, then listeners
   * (added to those wanted).
   */
  private async serveHost(
    table: RoutingTable,
    settings: NetworkSettings,
    wanted: Wanted,
  ): Promise<void> {
    const dns = dnsAddress(settings.serviceRange);
    try {
      await this.host.blackhole(settings.serviceRange);
      await this.host.blackhole(settings.bridgeRange);
      const addresses = new Set([
        dns,
        ...table.services.flatMap((s) => (s.address ? [s.address] : [])),
      ]);
      await this.host.sync(settings.serviceRange, addresses);
    } catch (error) {
      this.hostRefusal = (error as Error).message;
      this.options.log.error(
        { reason: this.hostRefusal, fix: PRIVILEGE_HINT },
        'service addresses cannot be made local: services are reachable only through published ports',
      );
      return;
    }
    if (!this.dns.addresses.includes(`${dns}:${CONTAINER_DNS_PORT}`))
      await this.dns
        .listen(dns, CONTAINER_DNS_PORT)
        .catch((error: Error) =>
          this.options.log.error(
            { address: dns, reason: error.message },
            'DNS not served to containers',
          ),
        );
    for (const service of table.services) {
      const { address } = service;
      if (!address) continue;
      for (const port of service.ports)
        wanted.tcp.set(`${address}:${port.target}`, (socket) =>
          this.acceptService(socket, address, port.target),
        );
      for (const target of service.udpPorts) {
        const key = `${address}:${target}`;
        wanted.udp.set(key, (payload, from, reply) =>
          this.receiveService(key, address, target, { ...from, reply }, payload),
        );
      }
    }
  }

  /** A connection to a service address: from a source that shares a network with it. */
  private async acceptService(socket: Socket, address: string, target: number): Promise<void> {
    socket.on('error', () => socket.destroy());
    const service = await this.admitted(plainAddress(socket.remoteAddress ?? ''), address, 'tcp');
    if (!service) {
      socket.destroy();
      return;
    }
    await this.forwarder.forward(socket, service, target);
  }

  /**
   * A datagram to a UDP port of a service address: on its flow, or, from a source that shares a
   * network with the service, on a new one.
   */
  private async receiveService(
    listener: string,
    address: string,
    target: number,
    source: DatagramSource,
    payload: Buffer,
  ): Promise<void> {
    const service = this.udpForwarder.has(listener, source)
      ? this.table.byAddress.get(address)
      : await this.admitted(plainAddress(source.address), address, 'udp');
    if (service) this.udpForwarder.forward(listener, source, payload, service, target);
  }

  /**
   * The service at the address when the source may reach it (it shares a network with it, the
   * bridges listed again when the source is not known yet); undefined, logged, when it may not.
   */
  private async admitted(
    remote: string,
    address: string,
    protocol: 'tcp' | 'udp',
  ): Promise<ServiceRoute | undefined> {
    let source = await this.sourceOf(remote);
    const service = this.table.byAddress.get(address);
    if (service && source.kind === 'container' && !mayReach(source, service)) {
      // The container may have joined another network since the last listing: look again.
      await this.relistHostNetworks();
      source = this.policy.classify(remote);
    }
    if (service && mayReach(source, service)) return service;
    this.refusals.warn(
      remote,
      {
        service: service?.id,
        protocol,
        source: remote,
        sourceNetworks: source.kind === 'container' ? source.networks : source.kind,
        serviceNetworks: service?.networks,
      },
      'connection refused: the source shares no network with the service',
    );
    return undefined;
  }

  /** A connection to a published port (ingress mode): open to anyone who reaches the node. */
  private async acceptPublished(socket: Socket, port: number): Promise<void> {
    const ingress = this.publishedPort(port, 'tcp');
    if (!ingress) {
      socket.destroy();
      return;
    }
    await this.forwarder.forward(socket, ingress.service, ingress.target);
  }

  /** A datagram to a published UDP port: open to anyone who reaches the node. */
  private receivePublished(
    listener: string,
    port: number,
    source: DatagramSource,
    payload: Buffer,
  ): void {
    const ingress = this.publishedPort(port, 'udp');
    if (ingress)
      this.udpForwarder.forward(listener, source, payload, ingress.service, ingress.target);
  }

  private publishedPort(port: number, protocol: 'tcp' | 'udp'): IngressPort | undefined {
    return this.table.ingress.find((i) => i.port === port && i.protocol === protocol);
  }

  /** How the source is classified, listing the bridges again first when it is not known. */
  private async sourceOf(address: string) {
    const source = this.policy.classify(address);
    if (source.kind !== 'outside') return source;
    await this.relistHostNetworks();
    return this.policy.classify(address);
  }

  /**
   * Resolves once a listing of the bridges and containers that started after this call is in: a
   * container that just started on a new bridge is known by then. Listings start at least
   * BRIDGE_LISTING_SPACING_MS apart, each shared by everyone who waits for it.
   */
  private relistHostNetworks(): Promise<void> {
    this.nextListing ??= sleep(
      Math.max(0, this.lastListingAt + BRIDGE_LISTING_SPACING_MS - Date.now()),
    ).then(() => {
      this.nextListing = undefined;
      this.lastListingAt = Date.now();
      return this.options
        .hostNetworks()
        .then((listed) => this.policy.setHostNetworks(listed))
        .catch((error: Error) =>
          this.options.log.warn({ reason: error.message }, 'bridges and containers not listed'),
        );
    });
    return this.nextListing;
  }

  /** A stream to a task's port on another node, through its agent (see stream-target.ts). */
  private streamTo(nodeId: string, target: StreamTarget) {
    return this.openStreamTo(nodeId, formatStreamTarget(target));
  }

  private openStreamTo(nodeId: string, target: string) {
    const member = this.options.members().find((m) => m.id === nodeId);
    if (!member) return Promise.reject(new Error(`node ${nodeId} is not a member`));
    return this.options.openStream({ address: member.address, nodeId }, target, this.view.current);
  }

  /**
   * Another node's agent forwards a connection (or a UDP flow) to one of this node's tasks. A task
   * the asker saw ready and this node's view does not list yet (its report reached the leader's
   * replica first) is looked for again once this view has caught up with the asker's.
   */
  private async serveStream({ peer, target, asOf, accept, refuse }: IncomingStream): Promise<void> {
    const named = parseStreamTarget(target);
    const { kind, taskId, port } = named ?? { kind: 'tcp', taskId: target, port: 0 };
    let endpoint = this.localEndpoint(taskId);
    if (named && !endpoint && asOf > this.view.current) {
      await this.view.until(asOf);
      endpoint = this.localEndpoint(taskId);
    }
    const ports = kind === 'udp' ? endpoint?.udpPorts : endpoint?.ports;
    if (!named || !endpoint || !ports?.has(port)) {
      this.options.log.warn(
        { peer: peer.nodeId, target },
        'stream refused: no such ready task here',
      );
      refuse(404, `task ${taskId} is not ready on node ${this.options.nodeId}`);
      return;
    }
    if (kind === 'http') {
      const stream = accept();
      void this.httpRelay().then((relay) =>
        relay ? relay.accept(stream, endpoint, port) : stream.destroy(),
      );
      return;
    }
    if (kind === 'udp') {
      serveRemoteFlow(accept(), endpoint.host, ports.get(port) as number, this.options.log);
      return;
    }
    dialEndpoint(endpoint, port)
      .then((upstream) => splice(accept(), upstream))
      .catch((error: Error) => {
        this.options.log.warn(
          { peer: peer.nodeId, target, reason: error.message },
          'stream refused',
        );
        refuse(502, `task ${taskId} did not take the connection: ${error.message}`);
      });
  }

  /** The ready endpoint of one of this node's tasks, as this node's view has it. */
  private localEndpoint(taskId: string) {
    return this.table.services
      .flatMap((s) => s.endpoints)
      .find((e) => e.taskId === taskId && e.nodeId === this.options.nodeId);
  }
}

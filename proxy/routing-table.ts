/**
 * The routing table: per service its address, ports, networks and ready endpoints, as a pure
 * function of this node's replica (and of which nodes membership holds alive). DNS, the L4
 * listeners and the ingress all read it; nothing here writes cluster state.
 */
import {
  dnsAddress,
  type NetworkSettings,
  networksOf,
  type ServiceAddress,
} from '../mesh/api/network.js';
import type { HttpRouteSpec, PortSpec, ServiceRecord } from '../mesh/api/services.js';
import { serviceId } from '../mesh/api/services.js';
import type { TaskRecord, TaskStatus } from '../mesh/api/tasks.js';

/** A ready task of a service, and where its node reaches it. */
export interface Endpoint {
  taskId: string;
  nodeId: string;
  /** The address its node dials: the container's, or the node's for a process task. */
  host: string;
  /** Container port → the port its node dials for it. */
  ports: ReadonlyMap<number, number>;
  /** The same for its UDP ports. */
  udpPorts: ReadonlyMap<number, number>;
}

/**
 * Where a port of a service address comes from: the stack file (`ports:`, `expose:`), the
 * image's EXPOSE as a replica's container config has it, or a replica seen listening on it.
 */
export type PortSource = 'declared' | 'image' | 'listening';

export interface ServicePort extends PortSpec {
  source: PortSource;
}

export interface ServiceRoute {
  id: string;
  stack: string;
  name: string;
  /** Its virtual address; undefined until the leader allocated one. */
  address: string | undefined;
  /**
   * TCP ports its address answers on: the declared ones (published ones keeping what they
   * publish), then those its replicas' images expose, then those they were seen listening on.
   */
  ports: ServicePort[];
  /** UDP ports its address answers on: the declared ones. */
  udpPorts: number[];
  networks: string[];
  /** Host names and path prefixes the HTTP ingress sends here (x-mesh routes). */
  routes: HttpRouteSpec[];
  endpoints: Endpoint[];
}

/** A port published in ingress mode: served on every node's address. */
export interface IngressPort {
  port: number;
  protocol: 'tcp' | 'udp';
  /** Published on this address only (PortSpec.hostIp); absent: each node's address. */
  hostIp?: string;
  service: ServiceRoute;
  target: number;
}

export interface RoutingTable {
  settings: NetworkSettings | undefined;
  /** Where containers send DNS queries; undefined until settings exist. */
  dnsAddress: string | undefined;
  services: ServiceRoute[];
  byAddress: ReadonlyMap<string, ServiceRoute>;
  /** `<service>.<stack>`, lower case. */
  byName: ReadonlyMap<string, ServiceRoute>;
  ingress: IngressPort[];
  /** Ports the table cannot route, in words (a published port claimed twice). */
  notRouted: string[];
}

export interface ReplicaView {
  settings: NetworkSettings | undefined;
  services: ServiceRecord[];
  addresses: ReadonlyMap<string, ServiceAddress>;
  tasks: TaskRecord[];
  statuses: ReadonlyMap<string, TaskStatus>;
  /** Nodes membership holds alive (this one included): a dead node's tasks route nowhere. */
  alive: ReadonlySet<string>;
}

/**
 * A task that should take new connections: running and ready (healthy, with a healthcheck;
 * passing its probe, with one), not told to stop, on a live node.
 */
function endpointOf(
  task: TaskRecord,
  status: TaskStatus | undefined,
  service: ServiceRecord,
  alive: ReadonlySet<string>,
): Endpoint | undefined {
  if (task.desired !== 'running' || !task.nodeId || !alive.has(task.nodeId)) return undefined;
  if (status?.state !== 'running' || !status.ready || status.nodeId !== task.nodeId)
    return undefined;
  if (service.runtime === 'docker') {
    if (!status.address) return undefined;
    // A declared port is every replica's; a discovered one only theirs who showed it.
    const targets = [
      ...declaredPorts(service).map((p) => p.target),
      ...(status.exposed ?? []),
      ...(status.listening ?? []),
    ];
    const ports = new Map(targets.map((target) => [target, target]));
    const udpPorts = new Map(udpTargets(service).map((target) => [target, target]));
    return { taskId: task.id, nodeId: task.nodeId, host: status.address, ports, udpPorts };
  }
  const host = status.ports[0]?.hostIp;
  if (!host) return undefined;
  const reported = (protocol: 'tcp' | 'udp') =>
    new Map(status.ports.filter((p) => p.protocol === protocol).map((p) => [p.target, p.hostPort]));
  return {
    taskId: task.id,
    nodeId: task.nodeId,
    host,
    ports: reported('tcp'),
    udpPorts: reported('udp'),
  };
}

/** A service's declared UDP ports, each once, in order. */
function udpTargets(service: ServiceRecord): number[] {
  const targets = service.ports.filter((p) => p.protocol === 'udp').map((p) => p.target);
  return [...new Set(targets)].sort((a, b) => a - b);
}

/** A service's declared TCP ports: each once, published ones keeping what they publish. */
export function declaredPorts(service: ServiceRecord): ServicePort[] {
  const ports = new Map<number, ServicePort>();
  for (const p of service.ports)
    if (p.protocol === 'tcp' && !ports.has(p.target))
      ports.set(p.target, { ...p, source: 'declared' });
  for (const target of service.expose)
    if (!ports.has(target)) ports.set(target, { target, protocol: 'tcp', source: 'declared' });
  return [...ports.values()];
}

/**
 * Every port the service address answers on: the declared ones, then what the statuses of its
 * tasks meant to run report (whatever their state: a replica restarting keeps its ports served,
 * a connection meanwhile finds no endpoint and is closed, as for a declared one).
 */
function portsOf(service: ServiceRecord, statuses: Array<TaskStatus | undefined>): ServicePort[] {
  const ports = declaredPorts(service);
  if (service.runtime !== 'docker') return ports;
  const known = new Set(ports.map((p) => p.target));
  const add = (source: PortSource, found: Array<number[] | undefined>) => {
    for (const target of [...new Set(found.flatMap((list) => list ?? []))].sort((a, b) => a - b))
      if (!known.has(target)) {
        known.add(target);
        ports.push({ target, protocol: 'tcp', source });
      }
  };
  add(
    'image',
    statuses.map((s) => s?.exposed),
  );
  add(
    'listening',
    statuses.map((s) => s?.listening),
  );
  return ports;
}

/**
 * Where this node listens for a published port: its address; a loopback host IP on the node's
 * loopback (each node's own, as Compose binds it); another host IP only on the node it is.
 */
export function publishedAddress(ingress: IngressPort, advertise: string): string | undefined {
  const { hostIp } = ingress;
  if (!hostIp || hostIp === advertise) return advertise;
  if (hostIp.startsWith('127.') || hostIp === '::1') return hostIp;
  return undefined;
}

/** The endpoints of a service that serve a port of its address. */
export function servingPort(service: ServiceRoute, target: number): Endpoint[] {
  return service.endpoints.filter((e) => e.ports.has(target));
}

/** The endpoints of a service that serve a UDP port of its address. */
export function servingUdpPort(service: ServiceRoute, target: number): Endpoint[] {
  return service.endpoints.filter((e) => e.udpPorts.has(target));
}

export function routingTable(view: ReplicaView): RoutingTable {
  const byService = new Map<string, TaskRecord[]>();
  for (const task of view.tasks) {
    const list = byService.get(task.serviceId) ?? [];
    list.push(task);
    byService.set(task.serviceId, list);
  }
  const services: ServiceRoute[] = [];
  const notRouted: string[] = [];
  const ingress: IngressPort[] = [];
  const claimed = new Map<string, string>();
  for (const service of [...view.services].sort((a, b) =>
    serviceId(a).localeCompare(serviceId(b)),
  )) {
    const id = serviceId(service);
    const endpoints: Endpoint[] = [];
    const reported: Array<TaskStatus | undefined> = [];
    for (const task of byService.get(id) ?? []) {
      const status = view.statuses.get(task.id);
      const endpoint = endpointOf(task, status, service, view.alive);
      if (endpoint) endpoints.push(endpoint);
      if (task.desired === 'running' && status?.nodeId === task.nodeId) reported.push(status);
    }
    endpoints.sort((a, b) => a.taskId.localeCompare(b.taskId));
    const route: ServiceRoute = {
      id,
      stack: service.stack,
      name: service.name,
      address: view.addresses.get(id)?.address,
      ports: portsOf(service, reported),
      udpPorts: udpTargets(service),
      networks: networksOf(service),
      routes: service.routes ?? [],
      endpoints,
    };
    services.push(route);
    for (const p of service.ports) {
      if (p.published === undefined || p.mode === 'host') continue;
      // TCP and UDP ports of one number are two ports (DNS publishes 53 on both).
      const claim = `${p.published}/${p.protocol}`;
      const owner = claimed.get(claim);
      if (owner) {
        notRouted.push(`${id}: published port ${claim} is already published by ${owner}`);
        continue;
      }
      claimed.set(claim, id);
      ingress.push({
        port: p.published,
        protocol: p.protocol,
        service: route,
        target: p.target,
        ...(p.hostIp ? { hostIp: p.hostIp } : {}),
      });
    }
  }
  return {
    settings: view.settings,
    dnsAddress: view.settings && dnsAddress(view.settings.serviceRange),
    services,
    byAddress: new Map(services.filter((s) => s.address).map((s) => [s.address as string, s])),
    byName: new Map(services.map((s) => [`${s.name}.${s.stack}`.toLowerCase(), s])),
    ingress,
    notRouted,
  };
}

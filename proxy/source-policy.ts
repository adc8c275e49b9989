/**
 * Who may use the data plane, by source address: the node itself (loopback, its own addresses,
 * service addresses) anything; a container of the cluster the services it shares a network
 * with (any of the networks it is on; its bridge says one); anyone else nothing. DNS answers the
 * first two.
 */
import { type Cidr, contains, parseCidr } from '../mesh/api/network.js';
import type { ServiceRoute } from './routing-table.js';

/** One of the cluster's bridges on this host, and the network (key) it is a copy of. */
export interface Bridge {
  subnet: string;
  network: string;
}

/** A container of the cluster on this host: its address on each network it is on. */
export interface ContainerNetworks {
  addresses: string[];
  networks: string[];
}

/** The cluster's bridges on this host and the containers on them, as the engine lists them. */
export interface HostNetworks {
  bridges: Bridge[];
  containers: ContainerNetworks[];
}

export type Source =
  | { kind: 'host' }
  | { kind: 'container'; networks: string[] }
  | { kind: 'outside' };

const LOOPBACK = parseCidr('127.0.0.0/8');

/** An IPv4 address as Node reports it on a dual-stack socket ("::ffff:10.0.0.1"), plain. */
export function plainAddress(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export class SourcePolicy {
  private bridges: Array<{ cidr: Cidr; network: string }> = [];
  /** A container's address → every network that container is on. */
  private containers = new Map<string, string[]>();
  private serviceRange: Cidr | undefined;

  constructor(
    /** The node's own addresses (its advertise address). */
    private readonly own: ReadonlySet<string>,
  ) {}

  setServiceRange(range: string | undefined): void {
    this.serviceRange = range ? parseCidr(range) : undefined;
  }

  setHostNetworks({ bridges, containers }: HostNetworks): void {
    this.bridges = bridges.map((b) => ({ cidr: parseCidr(b.subnet), network: b.network }));
    this.containers = new Map(
      containers.flatMap((c) => c.addresses.map((address) => [address, c.networks])),
    );
  }

  classify(address: string): Source {
    const ip = plainAddress(address);
    if (ip === '::1' || contains(LOOPBACK, ip) || this.own.has(ip)) return { kind: 'host' };
    if (this.serviceRange && contains(this.serviceRange, ip)) return { kind: 'host' };
    const bridge = this.bridges.find((b) => contains(b.cidr, ip));
    if (!bridge) return { kind: 'outside' };
    // Every network of the container counts, whichever one its traffic leaves by (as in Swarm).
    // A container not listed yet, or listed on other networks (its address since given to
    // another), counts with its bridge's network alone.
    const networks = this.containers.get(ip);
    return {
      kind: 'container',
      networks: networks?.includes(bridge.network) ? networks : [bridge.network],
    };
  }
}

/** Whether a source may open a connection to a service's address: a network in common. */
export function mayReach(source: Source, service: ServiceRoute): boolean {
  if (source.kind === 'host') return true;
  if (source.kind === 'outside') return false;
  return service.networks.some((network) => source.networks.includes(network));
}

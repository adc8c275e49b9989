/**
 * Who may use the data plane, by source address: the node itself (loopback, its own addresses,
 * service addresses) anything; a container of the cluster the services it shares a network
 * with (its bridge says which network it is on); anyone else nothing. DNS answers the first two.
 */
import { type Cidr, contains, parseCidr } from '../mesh/api/network.js';
import type { ServiceRoute } from './routing-table.js';

/** One of the cluster's bridges on this host, and the network (key) it is a copy of. */
export interface Bridge {
  subnet: string;
  network: string;
}

export type Source =
  | { kind: 'host' }
  | { kind: 'container'; network: string }
  | { kind: 'outside' };

const LOOPBACK = parseCidr('127.0.0.0/8');

/** An IPv4 address as Node reports it on a dual-stack socket ("::ffff:10.0.0.1"), plain. */
export function plainAddress(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export class SourcePolicy {
  private bridges: Array<{ cidr: Cidr; network: string }> = [];
  private serviceRange: Cidr | undefined;

  constructor(
    /** The node's own addresses (its advertise address). */
    private readonly own: ReadonlySet<string>,
  ) {}

  setServiceRange(range: string | undefined): void {
    this.serviceRange = range ? parseCidr(range) : undefined;
  }

  setBridges(bridges: readonly Bridge[]): void {
    this.bridges = bridges.map((b) => ({ cidr: parseCidr(b.subnet), network: b.network }));
  }

  classify(address: string): Source {
    const ip = plainAddress(address);
    if (ip === '::1' || contains(LOOPBACK, ip) || this.own.has(ip)) return { kind: 'host' };
    if (this.serviceRange && contains(this.serviceRange, ip)) return { kind: 'host' };
    const bridge = this.bridges.find((b) => contains(b.cidr, ip));
    return bridge ? { kind: 'container', network: bridge.network } : { kind: 'outside' };
  }
}

/** Whether a source may open a connection to a service's address. */
export function mayReach(source: Source, service: ServiceRoute): boolean {
  if (source.kind === 'host') return true;
  if (source.kind === 'outside') return false;
  return service.networks.includes(source.network);
}

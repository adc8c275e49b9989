import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { type Cidr, ipToNumber, numberToIp, parseCidr } from '../../mesh/api/network.js';
import { LABEL } from './docker-labels.js';

/** How many /24s of the bridge range are tried before giving up (each taken one is skipped). */
const MAX_TRIES = 64;

export interface DockerNetworksOptions {
  docker: Docker;
  clusterId: string;
  nodeId: string;
  log: Logger;
}

/**
 * This node's bridge networks, one per stack network: created with a /24 of the cluster's bridge
 * range when a container first needs it, removed when none is left on it. Two stacks' bridges are
 * separate, so their containers cannot reach each other directly (the engine isolates bridges).
 */
export class DockerNetworks {
  /** Network key → the engine's network name, once created (or found) by this agent. */
  private readonly known = new Map<string, Promise<string>>();

  constructor(private readonly options: DockerNetworksOptions) {}

  /** The engine's name of this node's bridge for the key: found, or created. */
  ensure(key: string, bridgeRange: string): Promise<string> {
    let pending = this.known.get(key);
    if (!pending) {
      pending = this.findOrCreate(key, parseCidr(bridgeRange));
      this.known.set(key, pending);
      pending.catch(() => this.known.delete(key));
    }
    return pending;
  }

  /** Removes this node's bridges that no container uses any more. */
  async prune(): Promise<void> {
    const { docker, log } = this.options;
    for (const info of await this.own()) {
      const network = docker.getNetwork(info.Id);
      const inspected = (await network.inspect()) as { Containers?: Record<string, unknown> };
      if (Object.keys(inspected.Containers ?? {}).length > 0) continue;
      this.known.delete(info.Labels?.[LABEL.network] ?? '');
      await network.remove().catch((error: Error & { statusCode?: number }) => {
        // In use again (a container joined meanwhile), or already gone: both fine.
        if (error.statusCode !== 403 && error.statusCode !== 404)
          log.warn({ network: info.Name, reason: error.message }, 'network not removed');
      });
    }
  }

  /**
   * The cluster's bridges on this engine, every node's (several agents may share one engine):
   * which subnet is a copy of which network, for telling containers apart by source address.
   */
  async bridges(): Promise<Array<{ subnet: string; network: string }>> {
    const networks = await this.options.docker.listNetworks({
      filters: { label: [`${LABEL.cluster}=${this.options.clusterId}`] },
    });
    return networks.flatMap((n) =>
      (n.IPAM?.Config ?? [])
        .filter((c) => c.Subnet?.includes('.'))
        .map((c) => ({ subnet: c.Subnet as string, network: n.Labels?.[LABEL.network] ?? '' })),
    );
  }

  /** The engine's name for this node's bridge of a key: readable, and unique per cluster and node. */
  nameOf(key: string): string {
    return `mesh-${this.options.nodeId.slice(0, 12)}-${key}`;
  }

  private own(): Promise<Docker.NetworkInspectInfo[]> {
    const { docker, clusterId, nodeId } = this.options;
    return docker.listNetworks({
      filters: { label: [`${LABEL.cluster}=${clusterId}`, `${LABEL.node}=${nodeId}`] },
    });
  }

  private async findOrCreate(key: string, range: Cidr): Promise<string> {
    const { docker, clusterId, nodeId, log } = this.options;
    const name = this.nameOf(key);
    const existing = (await this.own()).find((n) => n.Labels?.[LABEL.network] === key);
    if (existing) return existing.Name;
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const subnet = await this.freeSubnet(range);
      if (!subnet) break;
      try {
        await docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          CheckDuplicate: true,
          IPAM: { Config: [{ Subnet: subnet.cidr, Gateway: subnet.gateway }] },
          Labels: { [LABEL.cluster]: clusterId, [LABEL.node]: nodeId, [LABEL.network]: key },
        });
        log.info({ network: name, subnet: subnet.cidr }, 'network created');
        return name;
      } catch (error) {
        lastError = error as Error;
        // Another agent on this engine took the subnet (or the name) meanwhile: look again.
        const again = (await this.own()).find((n) => n.Labels?.[LABEL.network] === key);
        if (again) return again.Name;
      }
    }
    throw new Error(
      `no free /24 left in the bridge range ${numberToIp(range.base)}/${range.bits} for network ${key}${lastError ? `: ${lastError.message}` : ''}`,
    );
  }

  /** The first /24 of the range that no network of this engine overlaps. */
  private async freeSubnet(range: Cidr): Promise<{ cidr: string; gateway: string } | undefined> {
    const used: Cidr[] = [];
    for (const network of await this.options.docker.listNetworks())
      for (const config of network.IPAM?.Config ?? [])
        if (config.Subnet?.includes('.')) used.push(parseLoose(config.Subnet));
    const step = 256;
    for (let base = range.base; base + step <= range.base + range.size; base += step) {
      if (used.some((u) => base < u.base + u.size && u.base < base + step)) continue;
      return { cidr: `${numberToIp(base)}/24`, gateway: numberToIp(base + 1) };
    }
    return undefined;
  }
}

/** A subnet the engine holds: any prefix length, not only the ones mesh would choose. */
function parseLoose(text: string): Cidr {
  const [ip, bitsText] = text.split('/');
  const bits = Number(bitsText);
  const size = 2 ** (32 - bits);
  const n = ipToNumber(ip ?? '') ?? 0;
  return { base: n - (n % size), bits, size };
}

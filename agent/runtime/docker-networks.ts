import { randomInt } from 'node:crypto';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { type Cidr, ipToNumber, numberToIp, parseCidr } from '../../mesh/api/network.js';
import type { HostNetworks } from '../../proxy/source-policy.js';
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
   * which subnet is a copy of which network, and each container's address on every network it
   * is on, for telling containers apart by source address.
   */
  async onHost(): Promise<HostNetworks> {
    const { docker, clusterId } = this.options;
    const filters = { label: [`${LABEL.cluster}=${clusterId}`] };
    const [networks, containers] = await Promise.all([
      docker.listNetworks({ filters }),
      docker.listContainers({ filters }),
    ]);
    const keyOf = new Map(networks.map((n) => [n.Id, n.Labels?.[LABEL.network] ?? '']));
    return {
      bridges: networks.flatMap((n) =>
        (n.IPAM?.Config ?? [])
          .filter((c) => c.Subnet?.includes('.'))
          .map((c) => ({ subnet: c.Subnet as string, network: keyOf.get(n.Id) ?? '' })),
      ),
      containers: containers.map((c) => {
        const attached = Object.values(c.NetworkSettings?.Networks ?? {}).filter(
          (n) => keyOf.has(n.NetworkID) && n.IPAddress,
        );
        return {
          addresses: attached.map((n) => n.IPAddress),
          networks: attached.map((n) => keyOf.get(n.NetworkID) as string),
        };
      }),
    };
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
    // Subnets the engine refused during this call: another agent on the engine may hold one
    // before its network is listed, so listing again alone would offer the same one each time.
    const refused = new Set<number>();
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
      const { free, taken } = await this.subnets(range);
      const candidates = free.filter((base) => !refused.has(base));
      if (candidates.length === 0) {
        const holders = taken.map((t) => `${t.cidr} is taken by network ${t.network}`).join(', ');
        throw new Error(
          `no free /24 left in the bridge range ${numberToIp(range.base)}/${range.bits} for network ${key} on this engine${holders ? ` (${holders})` : ''}${lastError ? `; the last refusal: ${lastError.message}` : ''}`,
        );
      }
      // At random among the free ones: agents sharing an engine rarely reach for the same one.
      const base = candidates[randomInt(candidates.length)] as number;
      const subnet = `${numberToIp(base)}/24`;
      try {
        await docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          CheckDuplicate: true,
          IPAM: { Config: [{ Subnet: subnet, Gateway: numberToIp(base + 1) }] },
          Labels: { [LABEL.cluster]: clusterId, [LABEL.node]: nodeId, [LABEL.network]: key },
        });
        log.info({ network: name, subnet }, 'network created');
        return name;
      } catch (error) {
        lastError = error as Error;
        refused.add(base);
        // Another agent on this engine took the subnet (or the name) meanwhile: look again.
        const again = (await this.own()).find((n) => n.Labels?.[LABEL.network] === key);
        if (again) return again.Name;
        log.debug(
          { network: name, subnet, reason: lastError.message },
          'subnet refused by the engine: trying another',
        );
      }
    }
    throw new Error(
      `network ${key}: the engine refused ${MAX_TRIES} subnets of the bridge range${lastError ? `, the last: ${lastError.message}` : ''}`,
    );
  }

  /** The /24s of the range that no network of this engine overlaps, and those taken, by whom. */
  private async subnets(
    range: Cidr,
  ): Promise<{ free: number[]; taken: Array<{ cidr: string; network: string }> }> {
    const used: Array<{ cidr: Cidr; text: string; network: string }> = [];
    for (const network of await this.options.docker.listNetworks())
      for (const config of network.IPAM?.Config ?? [])
        if (config.Subnet?.includes('.'))
          used.push({
            cidr: parseLoose(config.Subnet),
            text: config.Subnet,
            network: network.Name,
          });
    const step = 256;
    const free: number[] = [];
    const overlaps = (u: Cidr, base: number) => base < u.base + u.size && u.base < base + step;
    for (let base = range.base; base + step <= range.base + range.size; base += step)
      if (!used.some((u) => overlaps(u.cidr, base))) free.push(base);
    const taken = used
      .filter(
        (u) => u.cidr.base < range.base + range.size && range.base < u.cidr.base + u.cidr.size,
      )
      .sort((a, b) => a.cidr.base - b.cidr.base)
      .map((u) => ({ cidr: u.text, network: u.network }));
    return { free, taken };
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

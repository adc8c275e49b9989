/**
 * Networking settings and service addresses: what every node must agree on to route traffic the
 * same way. IPv4 only, in CIDR notation.
 */
import { type Check, object } from './schema.js';
import type { ServiceDefinition } from './services.js';

/** settings/network: chosen at `mesh init`, written once by the first leader. */
export interface NetworkSettings {
  /** Service addresses come from here; every node routes the whole range as unreachable. */
  serviceRange: string;
  /** Each node's stack bridges take a /24 of this range (bridges are per node: ranges may repeat across nodes). */
  bridgeRange: string;
}

/** addresses/<service id>: the service's virtual address, allocated by the leader. */
export interface ServiceAddress {
  address: string;
}

/** Clear of the engine's default pools (172.17.0.0/12, 192.168.0.0/16) and of common LAN ranges. */
export const DEFAULT_NETWORK_SETTINGS: NetworkSettings = {
  serviceRange: '10.250.0.0/16',
  bridgeRange: '10.251.0.0/16',
};

export interface Cidr {
  /** The network address as a 32-bit unsigned number. */
  base: number;
  bits: number;
  size: number;
}

export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * "10.250.0.0/16"; throws naming what is wrong. Ranges mesh hands out addresses from are /8 to
 * /30; a range that only matches addresses (trusted proxies) may be as narrow as /32.
 */
export function parseCidr(text: string, maxBits = 30): Cidr {
  const [ip, bitsText] = text.split('/');
  const base = ipToNumber(ip ?? '');
  const bits = Number(bitsText);
  if (base === undefined || !Number.isInteger(bits) || bits < 8 || bits > maxBits)
    throw new Error(
      `"${text}" is not an IPv4 range in CIDR form with a prefix of 8 to ${maxBits} bits`,
    );
  const size = 2 ** (32 - bits);
  if (base % size !== 0)
    throw new Error(`"${text}": ${ip} is not the first address of a /${bits} range`);
  return { base, bits, size };
}

export function contains(range: Cidr, ip: string): boolean {
  const n = ipToNumber(ip);
  return n !== undefined && n >= range.base && n < range.base + range.size;
}

/**
 * The address containers send DNS queries to: the range's first host address. It is never
 * given to a service.
 */
export function dnsAddress(serviceRange: string): string {
  return numberToIp(parseCidr(serviceRange).base + 1);
}

/**
 * The addresses services get from the range, as numbers: all but the reserved ones (the network
 * and broadcast addresses, and the DNS address).
 */
function serviceAddresses(serviceRange: string): { first: number; last: number } {
  const { base, size } = parseCidr(serviceRange);
  return { first: base + 2, last: base + size - 2 };
}

/** How many services the range gives an address to. */
export function serviceAddressCount(serviceRange: string): number {
  const { first, last } = serviceAddresses(serviceRange);
  return Math.max(0, last - first + 1);
}

/** The lowest address of the range that is neither taken nor reserved, or undefined when full. */
export function freeServiceAddress(
  serviceRange: string,
  taken: ReadonlySet<string>,
): string | undefined {
  const { first, last } = serviceAddresses(serviceRange);
  for (let n = first; n <= last; n++) {
    const ip = numberToIp(n);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

const cidr: Check = (value, path) => {
  if (typeof value !== 'string') return `${path} must be a string`;
  try {
    parseCidr(value);
    return undefined;
  } catch (error) {
    return `${path}: ${(error as Error).message}`;
  }
};

const ipv4: Check = (value, path) =>
  typeof value === 'string' && ipToNumber(value) !== undefined
    ? undefined
    : `${path} must be an IPv4 address`;

/** settings/network */
export const checkNetworkSettings: Check = object({
  required: { serviceRange: cidr, bridgeRange: cidr },
});

/** addresses/<service id> */
export const checkServiceAddress: Check = object({ required: { address: ipv4 } });

/** The network a service is on when its compose file names none: the stack's default. */
export function defaultNetwork(stack: string): string {
  return `${stack}_default`;
}

/** Compose's name for a stack's network; an external one keeps its own name, shared across stacks. */
export function networkKey(stack: string, name: string, external: boolean): string {
  return external ? name : `${stack}_${name}`;
}

/** The networks a service's tasks join. */
export function networksOf(service: Pick<ServiceDefinition, 'stack' | 'networks'>): string[] {
  return service.networks ?? [defaultNetwork(service.stack)];
}

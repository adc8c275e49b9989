import { readFileSync } from 'node:fs';
import { PRIVILEGE_HINT } from './addresses.js';

/** The capabilities the data plane needs, by their bit in the kernel's capability sets. */
const NEEDED: Record<string, number> = {
  // Service addresses on lo, and the routes that keep their range on the machine.
  CAP_NET_ADMIN: 12,
  // DNS on port 53, for containers and (by default) on the node address.
  CAP_NET_BIND_SERVICE: 10,
};

/** The needed capabilities missing from a `/proc/<pid>/status` text's effective set. */
export function missingCapabilities(status: string): string[] {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return Object.keys(NEEDED);
  const effective = BigInt(`0x${hex}`);
  return Object.entries(NEEDED)
    .filter(([, bit]) => (effective & (1n << BigInt(bit))) === 0n)
    .map(([name]) => name);
}

/** What this process lacks to serve service addresses and DNS, in words a user can act on. */
export function privilegesMissing(): string | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch (error) {
    return `cannot tell whether this process may manage addresses (${(error as Error).message}); ${PRIVILEGE_HINT}`;
  }
  const missing = missingCapabilities(status);
  if (missing.length === 0) return undefined;
  return `this agent lacks ${missing.join(' and ')}: service addresses and DNS on port 53 will not be served; ${PRIVILEGE_HINT}`;
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { contains, parseCidr } from '../../mesh/api/network.js';

const run = promisify(execFile);

/** What the agent needs from the host to make service addresses local, in words a user can act on. */
export const PRIVILEGE_HINT =
  'run the agent as root, or grant it CAP_NET_ADMIN (for example: setcap cap_net_admin,cap_net_bind_service+ep "$(command -v node)"), and install iproute2 (the `ip` command)';

export class HostNetworkError extends Error {
  override name = 'HostNetworkError';
}

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 5000 });
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    throw new HostNetworkError(`ip ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * The kernel's side of service addresses: the ranges routed as unreachable (so nothing for them
 * ever leaves the machine), and each service address made local on the loopback interface.
 * Dummy interfaces are not available everywhere; an address on `lo` works on every host.
 */
export class HostAddresses {
  private readonly ranges: string[] = [];
  /** What the last sync of each range made local: the same set again asks the kernel nothing. */
  private readonly synced = new Map<string, string>();

  /** Routes the range as unreachable; more specific routes (bridges, local addresses) still win. */
  async blackhole(range: string): Promise<void> {
    if (this.ranges.includes(range)) return;
    await ip('route', 'replace', 'unreachable', range);
    this.ranges.push(range);
  }

  /** The addresses of the range on lo now. */
  async present(range: string): Promise<Set<string>> {
    const cidr = parseCidr(range);
    const out = await ip('-o', '-4', 'addr', 'show', 'dev', 'lo');
    const found = new Set<string>();
    for (const match of out.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/32/g))
      if (contains(cidr, match[1] as string)) found.add(match[1] as string);
    return found;
  }

  /** Makes the addresses of the range on lo exactly these. */
  async sync(range: string, wanted: ReadonlySet<string>): Promise<void> {
    const key = [...wanted].sort().join(',');
    if (this.synced.get(range) === key) return;
    const present = await this.present(range);
    for (const address of wanted)
      if (!present.has(address)) await ip('addr', 'add', `${address}/32`, 'dev', 'lo');
    for (const address of present)
      if (!wanted.has(address)) await ip('addr', 'del', `${address}/32`, 'dev', 'lo');
    this.synced.set(range, key);
  }

  /** Removes what this process added: the addresses, then the routes. */
  async remove(): Promise<void> {
    for (const range of this.ranges) {
      await this.sync(range, new Set());
      // Another agent of the host may have taken the route away already: gone is what we want.
      await ip('route', 'del', 'unreachable', range).catch(() => undefined);
    }
    this.ranges.length = 0;
    this.synced.clear();
  }
}

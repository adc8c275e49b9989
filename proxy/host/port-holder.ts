/**
 * Who holds a port on this host, from /proc: the socket bound to it (/proc/net/tcp, udp and their
 * IPv6 twins), then the process with that socket among its open files. For a person reading why a
 * published port is not served ("nginx (pid 812)"), so it is asked only when a listen failed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** /proc/net/tcp's state of a listening socket. */
const LISTEN = '0A';

/**
 * An address as /proc/net writes it (hex, each 32-bit word in host order, little-endian here):
 * IPv4 dotted, an IPv4-mapped IPv6 address as its IPv4, '::' for the IPv6 wildcard, else the hex.
 */
function procAddress(hex: string): string {
  const word = (at: number) => {
    const n = Number.parseInt(hex.slice(at, at + 8), 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  };
  if (hex.length === 8) return word(0);
  if (/^0{32}$/.test(hex)) return '::';
  if (/^0{16}FFFF0000/i.test(hex)) return word(24);
  return hex;
}

/** The inodes of the sockets bound to the port on the address or a wildcard (TCP: listening). */
function socketInodes(address: string, port: number, protocol: 'tcp' | 'udp'): Set<string> {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    const text = readIfThere(file);
    for (const line of text?.split('\n').slice(1) ?? []) {
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (!local || !inode || inode === '0') continue;
      const [host = '', portHex = ''] = local.split(':');
      if (Number.parseInt(portHex, 16) !== port) continue;
      if (![address, '0.0.0.0', '::'].includes(procAddress(host))) continue;
      if (protocol === 'udp' || state === LISTEN) inodes.add(inode);
    }
  }
  return inodes;
}

/**
 * "nginx (pid 812)" for the process that holds the port on the address (bound to it or to every
 * address); undefined when none can be seen.
 */
export function portHolder(
  address: string,
  port: number,
  protocol: 'tcp' | 'udp',
): string | undefined {
  const inodes = socketInodes(address, port, protocol);
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    for (const fd of listIfThere(`/proc/${pid}/fd`)) {
      const target = linkIfThere(`/proc/${pid}/fd/${fd}`);
      const inode = target && /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const name = readIfThere(`/proc/${pid}/comm`)?.trim() ?? 'a process';
        return `${name} (pid ${pid})`;
      }
    }
  }
  return undefined;
}

// Processes come and go while /proc is read, and another user's are closed to us without root:
// a file that cannot be read is one the answer does not come from.
function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function listIfThere(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function linkIfThere(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Why a listen failed, for a person to act on: who holds the port ("the port is taken on this
 * node by nginx (pid 812)"), or the error itself.
 */
export function whyNotListening(
  error: Error,
  address: string,
  port: number,
  protocol: 'tcp' | 'udp',
): string {
  return (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
    ? `the port is taken on this node by ${portHolder(address, port, protocol) ?? 'a process not seen from here'}`
    : error.message;
}

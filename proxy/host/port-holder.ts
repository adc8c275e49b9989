/**
 * Who holds a port on this host, from /proc: the socket bound to it (/proc/net/tcp, udp and their
 * IPv6 twins), then the process with that socket among its open files. For a person reading why a
 * published port is not served ("nginx (pid 812)"), so it is asked only when a listen failed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** /proc/net/tcp's state of a listening socket. */
const LISTEN = '0A';

/** The inodes of the sockets bound to the port (TCP: listening ones). */
function socketInodes(port: number, protocol: 'tcp' | 'udp'): Set<string> {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    const text = readIfThere(file);
    for (const line of text?.split('\n').slice(1) ?? []) {
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (!local || !inode || inode === '0') continue;
      if (Number.parseInt(local.split(':')[1] ?? '', 16) !== port) continue;
      if (protocol === 'udp' || state === LISTEN) inodes.add(inode);
    }
  }
  return inodes;
}

/** "nginx (pid 812)" for the process that holds the port; undefined when none can be seen. */
export function portHolder(port: number, protocol: 'tcp' | 'udp'): string | undefined {
  const inodes = socketInodes(port, protocol);
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

import { readFile } from 'node:fs/promises';

/** The socket state LISTEN in /proc/net/tcp (include/net/tcp_states.h: TCP_LISTEN = 10). */
const LISTEN = '0A';
/** 127.0.0.0/8 as /proc writes an IPv4 address: the host-order word, so the first octet last. */
const IPV4_LOOPBACK = /7F$/;
/** ::1 in /proc/net/tcp6: four host-order words. */
const IPV6_LOOPBACK = '00000000000000000000000001000000';
/** ::ffff:127.x.y.z: a loopback address mapped into IPv6. */
const IPV6_MAPPED_LOOPBACK = /^0000000000000000FFFF0000[0-9A-F]{6}7F$/;

function loopbackOnly(address: string): boolean {
  if (address.length === 8) return IPV4_LOOPBACK.test(address);
  return address === IPV6_LOOPBACK || IPV6_MAPPED_LOOPBACK.test(address);
}

/**
 * The TCP ports listened on in a /proc/<pid>/net/tcp or tcp6 text, in order, each once; a socket
 * bound to loopback only is left out (nothing from outside the container reaches it).
 */
export function listeningPorts(...texts: string[]): number[] {
  const ports = new Set<number>();
  for (const text of texts)
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== LISTEN || !local) continue;
      const [address, port] = local.split(':');
      if (!address || !port || loopbackOnly(address.toUpperCase())) continue;
      ports.add(Number.parseInt(port, 16));
    }
  return [...ports].sort((a, b) => a - b);
}

/** What the processes of the network namespace `pid` is in listen on (see listeningPorts). */
export async function listeningIn(pid: number): Promise<number[]> {
  const [tcp, tcp6] = await Promise.all(
    ['tcp', 'tcp6'].map((file) => readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(noFile)),
  );
  return listeningPorts(tcp as string, tcp6 as string);
}

/** A kernel without IPv6 has no tcp6: as good as an empty table. Anything else is an error. */
function noFile(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return '';
  throw error;
}

/** "host:port" (IPv6 hosts in brackets) split into its parts; without a port, NaN. */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) return { host: address, port: Number.NaN };
  return {
    host: address.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(colon + 1)),
  };
}

/** The host part of "host:port" (what `mesh node ls` and listings show of a node's address). */
export function hostOf(address: string): string {
  return splitHostPort(address).host;
}

/** host and port as "host:port", an IPv6 host in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

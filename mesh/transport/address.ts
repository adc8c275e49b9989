/** "host:port" (IPv6 hosts in brackets) split into its parts; without a port, NaN. */
export function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) return { host: address, port: Number.NaN };
  return {
    host: address.slice(0, colon).replace(/^\[|\]$/g, ''),
    port: Number(address.slice(colon + 1)),
  };
}

/**
 * The HTTP ingress's routes, a pure function of the routing table: every service with a TCP port
 * answers as `<service>.<stack>.mesh` (on its first port), and on the host names and path prefixes
 * its x-mesh routes declare. The longest matching prefix wins.
 */
import type { RoutingTable, ServiceRoute } from '../routing-table.js';

export interface HttpRoute {
  host: string;
  prefix: string;
  stripPrefix: boolean;
  service: ServiceRoute;
  /** The container port requests go to. */
  target: number;
}

/** Host (lower case, no port) → its routes, longest prefix first. */
export type HostRoutes = ReadonlyMap<string, readonly HttpRoute[]>;

export function hostRoutes(table: RoutingTable): HostRoutes {
  const byHost = new Map<string, HttpRoute[]>();
  const add = (route: HttpRoute) => {
    const list = byHost.get(route.host) ?? [];
    // Deploy refuses a host+prefix claimed twice; should two still meet, the first keeps it.
    if (!list.some((r) => r.prefix === route.prefix)) list.push(route);
    byHost.set(route.host, list);
  };
  for (const service of table.services) {
    const [first] = service.ports;
    if (first)
      add({
        host: `${service.name}.${service.stack}.mesh`.toLowerCase(),
        prefix: '/',
        stripPrefix: false,
        service,
        target: first.target,
      });
    for (const spec of service.routes)
      add({
        host: spec.host,
        prefix: spec.path,
        stripPrefix: spec.stripPrefix,
        service,
        target: spec.port,
      });
  }
  for (const list of byHost.values()) list.sort((a, b) => b.prefix.length - a.prefix.length);
  return byHost;
}

/** A path is under a prefix at a segment boundary: /api matches /api and /api/x, not /apix. */
function under(path: string, prefix: string): boolean {
  if (prefix === '/' || path === prefix) return true;
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path[prefix.length] === '/' || path[prefix.length] === '?';
}

/** The route for a request's Host header and path, or undefined. */
export function matchRoute(
  routes: HostRoutes,
  hostHeader: string,
  path: string,
): HttpRoute | undefined {
  const host = hostOnly(hostHeader);
  return routes.get(host)?.find((route) => under(path, route.prefix));
}

/** The host of a Host header, lower case, without its port (IPv6 literals keep their brackets). */
export function hostOnly(hostHeader: string): string {
  const host = hostHeader.toLowerCase();
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** The path the service sees: without the prefix when the route strips it (never empty). */
export function forwardedPath(route: HttpRoute, path: string): string {
  if (!route.stripPrefix || route.prefix === '/') return path;
  const rest = path.slice(route.prefix.replace(/\/$/, '').length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

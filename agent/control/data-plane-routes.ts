import type { DataPlane } from '../../proxy/data-plane.js';
import type { Certificates } from '../cluster/ingress-certificates.js';
import type { ClusterTraffic } from '../cluster/traffic.js';
import { NotFoundError } from '../errors.js';
import type { ControlHandlers, RouteRow, RoutesResponse } from './api.js';

/**
 * The data plane's routes: `GET /v1/routes`, the routing table as this node's data plane holds it
 * (for `mesh inspect`: what a connection sent from here would reach, and what the ingress saw),
 * and the ingress's certificates.
 */
export function routesRoute(
  nodeId: string,
  dataPlane: DataPlane,
  certificates: Certificates,
  traffic: ClusterTraffic,
): Pick<
  ControlHandlers,
  'GET /v1/routes' | 'GET /v1/traffic' | 'POST /v1/certs' | 'GET /v1/certs' | 'POST /v1/certs/rm'
> {
  return {
    'GET /v1/traffic': ({ service }) => traffic.gather(service),
    'POST /v1/certs': (request) => certificates.add(request),
    'GET /v1/certs': () => certificates.list(),
    'POST /v1/certs/rm': ({ host }) => certificates.remove(host),
    'GET /v1/routes': async ({ service }) => {
      const table = dataPlane.routes;
      const stats = await Promise.all(table.services.map((s) => dataPlane.ingressStats(s.id)));
      const rows: RouteRow[] = table.services.map((s, i) => ({
        id: s.id,
        dnsName: `${s.name}.${s.stack}.mesh`,
        address: s.address ?? null,
        ports: s.ports.map((p) => ({ port: p.target, source: p.source })),
        udpPorts: s.udpPorts,
        published: table.ingress
          .filter((i) => i.service.id === s.id)
          .map((i) => (i.protocol === 'udp' ? `${i.port}/udp` : String(i.port))),
        networks: s.networks,
        hosts: s.routes.map((r) => `${r.host}${r.path}`),
        http: stats[i] ?? null,
        endpoints: s.endpoints.map((e) => ({
          task: e.taskId,
          node: e.nodeId,
          host: e.host,
          local: e.nodeId === nodeId,
          ports: [...e.ports.keys()].sort((a, b) => a - b),
          udpPorts: [...e.udpPorts.keys()].sort((a, b) => a - b),
        })),
      }));
      const wanted = typeof service === 'string' && service !== '' ? service : undefined;
      const services = wanted
        ? rows.filter((r) => r.id === wanted || r.id.endsWith(`.${wanted}`))
        : rows;
      if (wanted && services.length === 0) throw new NotFoundError(`no service ${wanted}`);
      const response: RoutesResponse = {
        node: nodeId,
        services,
        notRouted: table.notRouted,
        notServed: [...dataPlane.notServed].map(([address, reason]) => ({ address, reason })),
      };
      return response;
    },
  };
}

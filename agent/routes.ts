import type { DataPlane } from '../proxy/data-plane.js';
import type { ControlHandlers, RouteRow, RoutesResponse } from './control-api.js';
import { NotFoundError } from './errors.js';

/**
 * `GET /v1/routes`: the routing table as this node's data plane holds it, for `mesh inspect`:
 * what a connection to a service sent from here would reach.
 */
export function routesRoute(
  nodeId: string,
  dataPlane: DataPlane,
): Pick<ControlHandlers, 'GET /v1/routes'> {
  return {
    'GET /v1/routes': ({ service }) => {
      const table = dataPlane.routes;
      const rows: RouteRow[] = table.services.map((s) => ({
        id: s.id,
        dnsName: `${s.name}.${s.stack}.mesh`,
        address: s.address ?? null,
        ports: s.ports.map((p) => p.target),
        published: table.ingress.filter((i) => i.service.id === s.id).map((i) => i.port),
        networks: s.networks,
        endpoints: s.endpoints.map((e) => ({
          task: e.taskId,
          node: e.nodeId,
          host: e.host,
          local: e.nodeId === nodeId,
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

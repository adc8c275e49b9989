import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import type { RouteRow, TrafficResponse } from '../control/api.js';
import { InvalidError } from '../errors.js';

const TRAFFIC = 'traffic/v1';
/** A node that does not answer within this is left out, saying so. */
const ASK_MS = 2000;

type Stats = RouteRow['http'];

/**
 * What the HTTP ingress of every node saw of a service (`GET /v1/traffic`, the dashboard's
 * sparklines): each node answers for its own ingress; the agent asked gathers them, as logs are
 * gathered. Counters since each agent started; the reader turns them into rates.
 */
export class ClusterTraffic {
  constructor(
    private readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly transport: Transport,
    private readonly stats: (serviceId: string) => Promise<Stats | undefined>,
    private readonly bucketsMs: readonly number[],
  ) {
    transport.handle(TRAFFIC, async (body) => {
      const service = (body as { service?: unknown } | null)?.service;
      if (typeof service !== 'string') throw new Error('traffic request needs {service: string}');
      return (await this.stats(service)) ?? null;
    });
  }

  async gather(service: unknown): Promise<TrafficResponse> {
    if (typeof service !== 'string' || service === '')
      throw new InvalidError('traffic needs a service ID (STACK.SERVICE)');
    const nodes = this.state
      .list('nodes')
      .filter((n) => n.value.status === 'ready' || n.id === this.nodeId);
    const at = new Date().toISOString();
    const answers = await Promise.all(
      nodes.map(async ({ id, value }) => {
        try {
          const http =
            id === this.nodeId
              ? ((await this.stats(service)) ?? null)
              : ((await this.transport.request(
                  { address: value.address, nodeId: id },
                  TRAFFIC,
                  { service },
                  { timeoutMs: ASK_MS },
                )) as Stats);
          return { node: id, http };
        } catch (error) {
          return { node: id, http: null, unreachable: (error as Error).message };
        }
      }),
    );
    return { service, at, bucketsMs: [...this.bucketsMs], nodes: answers };
  }
}

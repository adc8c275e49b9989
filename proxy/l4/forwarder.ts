import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Counts } from '../../mesh/counts.js';
import { type Endpoint, type ServiceRoute, servingPort } from '../routing-table.js';
import { among, EndpointCounters, tryEndpoints } from './balancer.js';
import { splice } from './splice.js';

/** Connect attempts per connection: each to another endpoint. */
const MAX_ATTEMPTS = 3;
/**
 * A replica that has not taken a connection by then is passed over (the connection, once up, has
 * no timer). A replica whose accept backlog is full drops the SYN, sent again 1, 3 and 7 s after
 * the first: it is busy, not dead, and the limit waits out three drops. At 3 s, 1,000 clients on
 * two busybox `httpd` replicas (bench:overload) got 1 to 6 answers of 502 in 15 s where nginx, which
 * waits 60 s, got none. The cost: a replica that hangs without accepting holds a connection this
 * long before it goes to another (HAProxy's and Envoy's usual limit is 5 s).
 */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Opens a stream to a task on another node, through that node's agent (over the cluster mTLS). */
export type RemoteDialer = (nodeId: string, taskId: string, port: number) => Promise<Duplex>;

export interface ForwarderOptions {
  nodeId: string;
  dialRemote: RemoteDialer;
  log: Logger;
}

/** Dials host:port; rejects on failure or after the connect timeout. */
export function dialLocal(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A connection to an endpoint's port on this node (where its node dials it). */
export function dialEndpoint(endpoint: Endpoint, target: number): Promise<Socket> {
  const port = endpoint.ports.get(target);
  // A rejection, never a throw: callers (the pools' connect among them) wait on the promise.
  if (port === undefined)
    return Promise.reject(new Error(`task ${endpoint.taskId} has no port ${target}`));
  return dialLocal(endpoint.host, port);
}

/**
 * Sends a connection to a ready endpoint of a service: one on this node directly, one elsewhere
 * through its node's agent. A failed connect marks the endpoint and moves on to another.
 */
export class Forwarder {
  readonly counters = new EndpointCounters();
  /** Connections by service: taken by an endpoint or by none, and open now. */
  readonly counts = {
    connections: new Counts<{ service: string; outcome: 'forwarded' | 'failed' }>(),
    open: new Counts<{ service: string }>(),
  };

  constructor(private readonly options: ForwarderOptions) {}

  async forward(client: Socket, service: ServiceRoute, target: number): Promise<void> {
    client.setNoDelay(true);
    // Until an upstream is there, a client error must not go unhandled.
    const early = (error: Error) =>
      this.options.log.debug({ reason: error.message }, 'client gone');
    client.on('error', early);
    const taken = await tryEndpoints<Duplex>(
      among(this.counters, servingPort(service, target)),
      MAX_ATTEMPTS,
      async ({ endpoint, failed }) => {
        try {
          return { done: await this.connect(endpoint, target) };
        } catch (error) {
          failed();
          this.options.log.warn(
            {
              service: service.id,
              task: endpoint.taskId,
              onNode: endpoint.nodeId,
              reason: (error as Error).message,
            },
            'endpoint did not take the connection; trying another',
          );
          return { again: error as Error };
        }
      },
    );
    if ('lastFailure' in taken) {
      this.options.log.warn(
        { service: service.id, port: target, endpoints: servingPort(service, target).length },
        'no endpoint took the connection: closed',
      );
      this.counts.connections.add({ service: service.id, outcome: 'failed' });
      client.destroy();
      return;
    }
    const { lease, value: upstream } = taken;
    this.counts.connections.add({ service: service.id, outcome: 'forwarded' });
    this.counts.open.add({ service: service.id });
    client.off('error', early);
    if (client.destroyed) upstream.destroy();
    else await splice(client, upstream);
    lease.release();
    this.counts.open.add({ service: service.id }, -1);
  }

  /** A connection to an endpoint's port: directly when it runs here, through its node's agent else. */
  connect(endpoint: Endpoint, target: number): Promise<Duplex> {
    if (endpoint.nodeId === this.options.nodeId) return dialEndpoint(endpoint, target);
    return this.options.dialRemote(endpoint.nodeId, endpoint.taskId, target);
  }
}

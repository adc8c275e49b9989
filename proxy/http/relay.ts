import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../routing-table.js';
import { withoutHopByHop, withoutHopByHopFields } from './headers.js';
import { type Connect, ReplicaUnreachable, UpstreamPools } from './pools.js';

/** On a relay's 502: its replica did not take the connection, so nothing of the request was used. */
export const RELAY_UNREACHABLE_HEADER = 'x-mesh-relay-unreachable';

/**
 * The far end of the ingress for a replica on this node that closes its connection after each
 * answer: another node's ingress keeps a pool of keep-alive HTTP connections to this node (streams
 * over the agents' mTLS) and sends each request for such a replica through one; this relay passes
 * it on to the replica unchanged (the sending node already set X-Forwarded-*) over a pool of its
 * own. So a request waits for no stream to be opened, nor the replica dialled, before it is sent.
 * A replica that keeps its connections open is reached over streams spliced to its port instead.
 */
export class HttpRelay {
  private readonly server: Server;
  private readonly targets = new WeakMap<object, { endpoint: Endpoint; target: number }>();
  private readonly pools: UpstreamPools;

  constructor(
    connect: Connect,
    responseTimeoutMs: number,
    private readonly log: Logger,
  ) {
    this.pools = new UpstreamPools({ direct: connect }, responseTimeoutMs);
    this.server = createServer({ requestTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) =>
      this.relay(req, res),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      // Upgrades take the raw stream path; a relay connection carries plain requests only.
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      this.log.warn({ url: req.url }, 'upgrade on an HTTP relay connection refused');
    });
  }

  /** Serves a stream another node's ingress opened for requests to this replica port. */
  accept(stream: Duplex, endpoint: Endpoint, target: number): void {
    // Wrapped: the HTTP server writes straight to a stream's native handle where it finds one,
    // and a stream between agents has one that frames what it is given (the answer's status
    // line came out garbled); a plain Duplex over it is written through its methods.
    const connection = Duplex.from({ readable: stream, writable: stream });
    this.targets.set(connection, { endpoint, target });
    this.server.emit('connection', connection);
  }

  retain(taskIds: ReadonlySet<string>): void {
    this.pools.retain(taskIds);
  }

  close(): void {
    this.pools.close();
    this.server.closeAllConnections();
  }

  private relay(req: IncomingMessage, res: ServerResponse): void {
    const where = this.targets.get(req.socket);
    if (!where) {
      res.writeHead(500).end();
      return;
    }
    const body =
      req.headers['transfer-encoding'] !== undefined ||
      Number(req.headers['content-length'] ?? 0) > 0;
    this.pools.poolFor(where.endpoint, where.target).stream(
      {
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: withoutHopByHop(req.rawHeaders),
        body: body ? req : null,
      },
      // The replica's Connection: close is its own: the relay connection stays in the pool.
      ({ statusCode, headers }) => res.writeHead(statusCode, withoutHopByHopFields(headers)),
      (error) => {
        if (!error) return;
        if (res.headersSent) {
          res.destroy(error);
          return;
        }
        const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
        if (error instanceof ReplicaUnreachable) headers[RELAY_UNREACHABLE_HEADER] = '1';
        res.writeHead(502, headers).end(`replica ${where.endpoint.taskId}: ${error.message}\n`);
      },
    );
  }
}

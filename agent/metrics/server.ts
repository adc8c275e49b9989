import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { splitHostPort } from '../../mesh/transport/address.js';
import { listenError } from '../identity/provision.js';
import type { NodeMetrics } from './metrics.js';

/**
 * The node's /metrics, on a listener of its own (--metrics-addr): plain HTTP, as Prometheus
 * scrapes, read-only, answering nothing else. Put it on an address only your monitoring reaches.
 */
export class MetricsServer {
  private readonly server: Server;

  constructor(
    private readonly address: string,
    metrics: NodeMetrics,
    log: Logger,
  ) {
    this.server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res
          .writeHead(404, { 'content-type': 'text/plain' })
          .end('mesh serves only GET /metrics here\n');
        return;
      }
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (error: Error) => {
          log.warn({ err: error }, 'metrics could not be read');
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
        },
      );
    });
  }

  async start(): Promise<void> {
    const { host, port } = splitHostPort(this.address);
    this.server.listen(port, host);
    await once(this.server, 'listening').catch((error: Error) => {
      throw listenError(error, host, port, '--metrics-addr');
    });
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

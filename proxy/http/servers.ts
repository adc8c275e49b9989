import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { type CertificateRecord, certificateFor } from '../../mesh/api/certificates.js';
import { LimitedLog } from '../../mesh/limited-log.js';
import type { HttpIngress } from './ingress.js';
import type { HttpLimits } from './limits.js';

/** A certificate and its key, opened (they are stored sealed). */
export type KeyPairOf = (host: string) => Promise<{ certPem: string; keyPem: string }>;

/**
 * The ingress's listeners on the node address: HTTP, and HTTPS with the certificate the client
 * names (SNI) taken from the cluster's certificates. A certificate's key is opened once per
 * stored version and kept in memory only. ALPN offers HTTP/1.1 (h2 can be added there). They
 * live as long as the ingress thread and end with it.
 */
export class IngressServers {
  private readonly contexts = new WeakMap<CertificateRecord, Promise<SecureContext>>();
  private servesHttps = false;
  private readonly servers: Array<HttpServer | HttpsServer> = [];

  constructor(
    private readonly ingress: HttpIngress,
    private readonly certificates: () => ReadonlyMap<string, CertificateRecord>,
    private readonly keyPairOf: KeyPairOf,
    private readonly limits: HttpLimits,
    private readonly maxConnections: number,
    private readonly log: Logger,
  ) {
    this.crowded = new LimitedLog(log, 1);
  }

  /** Open connections by client address, for the per-client limit. */
  private readonly connections = new Map<string, number>();
  private readonly crowded: LimitedLog;

  /**
   * Counts a client's connections; past the limit one is answered 429 (in plain HTTP; an HTTPS
   * one is closed before its handshake) and closed, so that one address cannot take every socket.
   */
  private admit(socket: Socket, plain: boolean): void {
    const client = socket.remoteAddress ?? '';
    const open = (this.connections.get(client) ?? 0) + 1;
    this.connections.set(client, open);
    socket.once('close', () => {
      const left = (this.connections.get(client) ?? 1) - 1;
      if (left > 0) this.connections.set(client, left);
      else this.connections.delete(client);
    });
    if (open <= this.limits.connectionsPerClient) return;
    this.crowded.warn(
      client,
      { client, limit: this.limits.connectionsPerClient },
      'client over its connection limit: refused',
    );
    if (plain)
      socket.end(
        'HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 38\r\nConnection: close\r\n\r\ntoo many connections from this client\n',
      );
    socket.destroySoon();
  }

  /** Opens the keys of certificates not opened yet, so that no client waits for it. */
  warm(): void {
    if (!this.servesHttps) return;
    for (const record of this.certificates().values())
      this.contextOf(record).catch(() => undefined); // logged by contextOf; retried when asked
  }

  /** Listens on host:httpPort and host:httpsPort (0: not at all); a port that fails is logged. */
  async listen(host: string, httpPort: number, httpsPort: number): Promise<void> {
    // Headers have their timeout; a body and a slow reader have theirs in the ingress.
    const options = {
      requestTimeout: 0,
      headersTimeout: this.limits.headerTimeoutMs,
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
    };
    if (httpPort > 0) {
      const server = createHttpServer(options, (req, res) => this.ingress.handle(req, res, 'http'));
      server.maxConnections = this.maxConnections;
      server.on('connection', (socket: Socket) => this.admit(socket, true));
      server.on('upgrade', (req, socket, head) => this.ingress.upgrade(req, socket, head, 'http'));
      await this.start(server, host, httpPort);
    }
    if (httpsPort > 0) {
      const server = createHttpsServer(
        {
          ...options,
          ALPNProtocols: ['http/1.1'],
          SNICallback: (name, done) => {
            const record = certificateFor(this.certificates(), name);
            if (!record) {
              done(new Error(`no certificate for ${name}`), undefined);
              return;
            }
            this.contextOf(record).then(
              (context) => done(null, context),
              (error: Error) => done(error, undefined),
            );
          },
        },
        (req, res) => this.ingress.handle(req, res, 'https'),
      );
      server.maxConnections = this.maxConnections;
      server.on('connection', (socket: Socket) => this.admit(socket, false));
      server.on('upgrade', (req, socket, head) => this.ingress.upgrade(req, socket, head, 'https'));
      server.on('tlsClientError', (error) =>
        this.log.debug({ reason: error.message }, 'HTTPS handshake refused'),
      );
      this.servesHttps = await this.start(server, host, httpsPort);
    }
  }

  /** The TLS context of a stored certificate; one that failed to open is tried again next time. */
  private contextOf(record: CertificateRecord): Promise<SecureContext> {
    let context = this.contexts.get(record);
    if (!context) {
      context = this.keyPairOf(record.host).then(({ certPem, keyPem }) =>
        createSecureContext({ cert: certPem, key: keyPem }),
      );
      this.contexts.set(record, context);
      context.catch((error: Error) => {
        this.contexts.delete(record);
        this.log.warn(
          { host: record.host, reason: error.message },
          'HTTPS not served for this host: its key could not be opened',
        );
      });
    }
    return context;
  }

  /** Stops listening and drops every client connection (the thread ends them all by ending). */
  close(): void {
    for (const server of this.servers) {
      server.close();
      server.closeAllConnections();
    }
    this.servers.length = 0;
  }

  /** Whether it listens: a port that fails is logged. */
  private async start(
    server: HttpServer | HttpsServer,
    host: string,
    port: number,
  ): Promise<boolean> {
    this.servers.push(server);
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    try {
      server.listen(port, host);
      await once(server, 'listening');
      return true;
    } catch (error) {
      this.log.error(
        { address: `${host}:${port}`, reason: (error as Error).message },
        'HTTP ingress not served on this address',
      );
      return false;
    }
  }
}

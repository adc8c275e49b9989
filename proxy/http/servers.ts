import { once } from 'node:events';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttp2Server, type Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls';
import type { Logger } from 'pino';
import { type CertificateRecord, certificateFor } from '../../mesh/api/certificates.js';
import type { UnservedPort } from '../../mesh/api/nodes.js';
import { LimitedLog } from '../../mesh/limited-log.js';
import { whyNotListening } from '../host/port-holder.js';
import { LISTEN_BACKLOG } from '../l4/listeners.js';
import type { HttpIngress } from './ingress.js';
import type { HttpLimits } from './limits.js';

/** A certificate and its key, opened (they are stored sealed). */
export type KeyPairOf = (host: string) => Promise<{ certPem: string; keyPem: string }>;

/** Streams a client may have open at once on one HTTP/2 connection (nginx's default too). */
const MAX_CONCURRENT_STREAMS = 128;

/** A server whose port was taken: kept to listen again. */
interface RefusedServer {
  server: HttpServer | TlsServer;
  host: string;
  reason: string;
}

/**
 * The ingress's listeners on the node address: HTTP, and HTTPS with the certificate the client
 * names (SNI) taken from the cluster's certificates. A certificate's key is opened once per
 * stored version and kept in memory only. HTTPS speaks HTTP/2 to a client that offers it (ALPN
 * h2) and HTTP/1.1 to any other, WebSockets included. They live as long as their ingress worker
 * and end with it.
 */
export class IngressServers {
  private readonly contexts = new WeakMap<CertificateRecord, Promise<SecureContext>>();
  private servesHttps = false;
  private readonly servers: Array<HttpServer | TlsServer> = [];
  /** The servers whose port was taken, by port, with why: tried again when the routes change. */
  private readonly refused = new Map<number, RefusedServer>();
  private retrying = false;
  /** The HTTPS port (0: none): once a refused one is taken up, HTTPS is served. */
  private httpsPort = 0;

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

  /** The HTTP/1.1 servers, listening or given the connections that chose HTTP/1.1. */
  private readonly http1Servers: HttpServer[] = [];
  /** Every client connection open, to drop them at close. */
  private readonly sockets = new Set<Socket>();

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

  /**
   * Listens on host:httpPort and host:httpsPort (0: not at all); the ports that fail are logged,
   * and returned with why.
   */
  async listen(host: string, httpPort: number, httpsPort: number): Promise<UnservedPort[]> {
    this.httpsPort = httpsPort;
    // Headers have their timeout; a body and a slow reader have theirs in the ingress.
    const options = {
      requestTimeout: 0,
      headersTimeout: this.limits.headerTimeoutMs,
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
    };
    if (httpPort > 0) {
      const server = this.http1(options, 'http');
      server.maxConnections = this.maxConnections;
      server.on('connection', (socket: Socket) => this.admit(socket, true));
      await this.start(server, host, httpPort);
    }
    if (httpsPort > 0) {
      const server = createTlsServer({
        ALPNProtocols: ['h2', 'http/1.1'],
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
      });
      // HTTP/1.1 and HTTP/2 over the TLS connections, each on the protocol ALPN settled on.
      const http1 = this.http1(options, 'https');
      const http2 = createHttp2Server({
        settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
      });
      // An idle connection goes after the keep-alive timeout, as an HTTP/1.1 one does.
      http2.on('session', (session) =>
        session.setTimeout(this.limits.keepAliveTimeoutMs, () => session.close()),
      );
      http2.on('request', (req: Http2ServerRequest, res) =>
        // The compatibility API has every member of a request and an answer the ingress uses;
        // where HTTP/2 differs (the Host, connection headers) the ingress asks httpVersionMajor.
        this.ingress.handle(
          req as unknown as IncomingMessage,
          res as unknown as ServerResponse,
          'https',
        ),
      );
      // A client speaking broken HTTP/2 loses its connection, nobody else.
      http2.on('sessionError', (error) =>
        this.log.debug({ reason: error.message }, 'HTTP/2 client connection failed'),
      );
      server.on('secureConnection', (socket: TLSSocket) =>
        (socket.alpnProtocol === 'h2' ? http2 : http1).emit('connection', socket),
      );
      server.maxConnections = this.maxConnections;
      server.on('connection', (socket: Socket) => this.admit(socket, false));
      server.on('tlsClientError', (error) =>
        this.log.debug({ reason: error.message }, 'HTTPS handshake refused'),
      );
      this.servesHttps = (await this.start(server, host, httpsPort)) === undefined;
    }
    return this.refusedPorts();
  }

  /**
   * Tries the ports that were taken again (as the data plane does for published ports, on every
   * change): the ports still refused once done; undefined when none was refused, or a try is
   * under way.
   */
  async retryRefused(): Promise<UnservedPort[] | undefined> {
    if (this.refused.size === 0 || this.retrying) return undefined;
    this.retrying = true;
    try {
      for (const [port, { server, host }] of [...this.refused]) {
        if (await this.attempt(server, host, port)) continue;
        this.log.info({ address: `${host}:${port}` }, 'HTTP ingress listening now');
        if (port === this.httpsPort) this.servesHttps = true;
      }
      return this.refusedPorts();
    } finally {
      this.retrying = false;
    }
  }

  private refusedPorts(): UnservedPort[] {
    return [...this.refused].map(([port, { reason }]) => ({ port, reason }));
  }

  /** An HTTP/1.1 server for the ingress (not listening: it is given connections). */
  private http1(
    options: { requestTimeout: number; headersTimeout: number; keepAliveTimeout: number },
    scheme: 'http' | 'https',
  ): HttpServer {
    const server = createHttpServer(options, (req, res) => this.ingress.handle(req, res, scheme));
    server.on('upgrade', (req, socket, head) => this.ingress.upgrade(req, socket, head, scheme));
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.http1Servers.push(server);
    return server;
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

  /** Stops listening and drops every client connection (the worker ends them all by ending). */
  close(): void {
    for (const server of this.servers) server.close();
    for (const server of this.http1Servers) server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    this.servers.length = 0;
  }

  /** Keeps the server and listens; a port that fails is logged, and returned with why. */
  private async start(
    server: HttpServer | TlsServer,
    host: string,
    port: number,
  ): Promise<UnservedPort | undefined> {
    this.servers.push(server);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    return this.attempt(server, host, port);
  }

  /** One try at listening: a port taken is noted (and logged when its reason is new). */
  private async attempt(
    server: HttpServer | TlsServer,
    host: string,
    port: number,
  ): Promise<UnservedPort | undefined> {
    try {
      server.listen({ port, host, backlog: LISTEN_BACKLOG });
      await once(server, 'listening');
      this.refused.delete(port);
      return undefined;
    } catch (error) {
      const reason = whyNotListening(error as Error, host, port, 'tcp');
      if (this.refused.get(port)?.reason !== reason)
        this.log.error(
          { address: `${host}:${port}`, reason },
          'HTTP ingress not served on this address',
        );
      this.refused.set(port, { server, host, reason });
      return { port, reason };
    }
  }
}

import { once } from 'node:events';
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { LimitedLog } from '../limited-log.js';
import type { NodeIdentity } from '../pki/identity.js';
import { splitHostPort } from './address.js';
import { Channel } from './channel.js';
import { REFUSAL_HEADER } from './dial.js';
import { type ChannelContext, MEMBER_PATH } from './link.js';
import { certificateRefusal, type Peer, peerFromCertificate, serverTlsOptions } from './tls.js';
import { type StreamHandler, TunnelServer } from './tunnel-server.js';
import { TUNNEL_ALPN } from './tunnels.js';

export const JOIN_PATH = '/join/v1';

/**
 * Plain HTTPS requests under a path (not WebSocket upgrades): the operators' control API. The
 * route checks the client certificate itself: it is not a member's.
 */
export interface RequestRoute {
  prefix: string;
  accept(request: IncomingMessage, response: ServerResponse): void;
}

/** A route reachable without a client certificate; only the join service is one. */
export interface AnonymousRoute {
  accept(request: IncomingMessage, socket: TLSSocket, head: Buffer, remote: string): void;
}

export interface ListenerContext extends ChannelContext {
  join?: AnonymousRoute;
  requests?: RequestRoute;
  adopt: (channel: Channel) => void;
  streams?: () => StreamHandler | undefined;
  /** Refused connections logged per remote address and minute; past that, only counted. */
  refusalLogsPerMinute: number;
}

/** host:port of every TCP connection, noted when it arrives: a failed handshake forgets it. */
const remotes = new WeakMap<object, string>();

/**
 * host:port of the other end. A TLS socket whose handshake failed (a reset, a timeout) has let go
 * of its address; Node keeps the TCP socket under it as _parent, noted in `remotes` on arrival.
 */
function remoteOf(socket: Duplex): string {
  const s = socket as TLSSocket & { _parent?: object };
  if (s.remoteAddress) return `${s.remoteAddress}:${s.remotePort}`;
  return remotes.get(s) ?? (s._parent && remotes.get(s._parent)) ?? 'unknown';
}

/** OpenSSL's words for why a handshake failed, without its file and line. */
function handshakeReason(error: NodeJS.ErrnoException): string {
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1];
  return `${error.code ?? 'error'}: ${openssl ?? error.message}`;
}

/** Answers an upgrade with a status and the reason, so the refused side can say why. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const header = reason.replace(/[\r\n]/g, ' ');
  socket.end(
    `HTTP/1.1 ${status} Refused\r\n${REFUSAL_HEADER}: ${header}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
  );
  (socket as TLSSocket).destroySoon();
}

/**
 * The node's one TLS port: WebSocket connections of members, the join route and the control API
 * in HTTP/1.1, and members' tunnel sessions (HTTP/2 under their own ALPN name, see tunnels.ts).
 */
export class Listener {
  private readonly server: Server;
  /** HTTP/1.1 on the connections that did not ask for a tunnel session. */
  private readonly http: HttpServer;
  private readonly tunnels: TunnelServer;
  private readonly wss: WebSocketServer;
  private readonly refusals: LimitedLog;
  /** Every TCP connection open, to end them all at close. */
  private readonly connections = new Set<Socket>();

  /** A renewed certificate: new handshakes present it; connections made before go on. */
  setIdentity(identity: NodeIdentity): void {
    this.ctx.identity = identity;
    this.server.setSecureContext(serverTlsOptions(identity));
  }

  constructor(private readonly ctx: ListenerContext) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: ctx.limits.maxFrameBytes,
      perMessageDeflate: false,
    });
    this.tunnels = new TunnelServer(() => ctx.streams?.(), ctx.log, ctx.warnings);
    this.server = createServer(
      {
        ...serverTlsOptions(ctx.identity),
        ALPNProtocols: [TUNNEL_ALPN, 'http/1.1'],
        noDelay: true,
      },
      (socket) => this.dispatch(socket),
    );
    this.server.on('connection', (socket: Socket) => {
      remotes.set(socket, `${socket.remoteAddress}:${socket.remotePort}`);
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
    });
    this.refusals = new LimitedLog(ctx.log, ctx.refusalLogsPerMinute);
    this.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket) => {
      this.warnRefused(socket, { reason: handshakeReason(error) }, 'TLS handshake refused');
    });
    this.http = createHttpServer();
    this.http.on('request', (request, response) => {
      const route = this.ctx.requests;
      if (route && (request.url ?? '').startsWith(route.prefix)) {
        route.accept(request, response);
        return;
      }
      this.warnRefused(request.socket, { url: request.url }, 'plain HTTP request refused');
      response.writeHead(426, { [REFUSAL_HEADER]: 'this port speaks WebSocket only' }).end();
    });
    this.http.on('upgrade', (request, socket, head) => this.upgrade(request, socket, head));
  }

  async listen(host: string, port: number): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  close(): Promise<void> {
    this.tunnels.close();
    for (const socket of this.connections) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Drops the tunnel sessions of members not honoured now (see Transport.recheck). */
  recheck(refusal: (peer: Peer) => string | undefined): void {
    this.tunnels.drop(refusal);
  }

  private dispatch(socket: TLSSocket): void {
    if (socket.alpnProtocol !== TUNNEL_ALPN) {
      this.http.emit('connection', socket);
      return;
    }
    const remote = remoteOf(socket);
    const member = this.member(socket, remote);
    if ('refusal' in member)
      this.warnRefused(socket, { reason: member.refusal }, 'tunnel session refused');
    this.tunnels.take(socket, member);
  }

  /** A refusal's line, a few a minute per address and kind (see LimitedLog). */
  private warnRefused(socket: Duplex, fields: Record<string, unknown>, message: string): void {
    const remote = remoteOf(socket);
    this.refusals.warn(splitHostPort(remote).host, { remote, ...fields }, message);
  }

  private refuse(socket: Duplex, status: number, reason: string): void {
    this.warnRefused(socket, { reason }, 'connection refused');
    refuseUpgrade(socket, status, reason);
  }

  /** The member at the other end, or why it is not one (with the status to answer). */
  private member(
    tls: TLSSocket,
    remote: string,
  ): { peer: Peer } | { refusal: string; status: number } {
    const cert = tls.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0)
      return { refusal: 'client certificate required', status: 401 };
    if (!tls.authorized)
      return {
        refusal: `certificate not accepted: ${String(tls.authorizationError)}`,
        status: 403,
      };
    const refusal = certificateRefusal(cert, this.ctx.policy);
    if (refusal) return { refusal, status: 403 };
    return { peer: peerFromCertificate(cert, remote) };
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tls = socket as TLSSocket;
    const remote = remoteOf(socket);
    const path = (request.url ?? '').split('?')[0];
    if (path === JOIN_PATH) {
      if (!this.ctx.join) this.refuse(socket, 403, 'this node does not issue certificates');
      else this.ctx.join.accept(request, tls, head, remote);
      return;
    }
    if (path !== MEMBER_PATH) {
      this.refuse(socket, 404, `no route ${path}`);
      return;
    }
    const member = this.member(tls, remote);
    if ('refusal' in member) {
      this.refuse(tls, member.status, member.refusal);
      return;
    }
    const { peer } = member;
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const channel = new Channel(ws, peer, this.ctx.handlers, this.ctx.limits, this.ctx.warnings);
      this.ctx.log.debug({ peer: peer.nodeId, remote }, 'peer connected');
      this.ctx.adopt(channel);
    });
  }
}

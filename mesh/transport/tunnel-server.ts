import { constants, createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { LimitedLog } from '../limited-log.js';
import { REFUSAL_HEADER } from './dial.js';
import type { Peer } from './tls.js';
import {
  AS_OF_HEADER,
  keepAlive,
  TARGET_HEADER,
  TUNNEL_SESSION_MEMORY_MB,
  TUNNEL_SETTINGS,
  widenWindow,
} from './tunnels.js';

/** A stream a member asked for: the handler answers it with accept() or refuse(). */
export interface IncomingStream {
  peer: Peer;
  /** What it asked for, in the handler's terms. */
  target: string;
  /** The index of the cluster state the asker chose the target from; 0 when it did not say. */
  asOf: number;
  /** Yes: the asker may send from now on; the stream is its bytes both ways (the same each call). */
  accept(): Duplex;
  /** No, with the reason the asker is told. */
  refuse(status: number, reason: string): void;
}

export type StreamHandler = (stream: IncomingStream) => void;

/** The serving side of the tunnels (see tunnels.ts): sessions members opened to this node. */
export class TunnelServer {
  private readonly server: Http2Server;
  private readonly sessions = new Map<ServerHttp2Session, Peer>();
  /**
   * The socket being handed over, and who it is or why it is refused: a session is made within
   * the hand-over, and a refused one is answered in HTTP/2, so the member can say why.
   */
  private arriving: { socket: TLSSocket; member: { peer: Peer } | { refusal: string } } | undefined;

  constructor(
    handler: () => StreamHandler | undefined,
    private readonly log: Logger,
    private readonly warnings: LimitedLog,
  ) {
    this.server = createServer({
      settings: TUNNEL_SETTINGS,
      maxSessionMemory: TUNNEL_SESSION_MEMORY_MB,
    });
    this.server.on('session', (session: ServerHttp2Session) => {
      const arriving = this.arriving;
      if (!arriving) {
        goAway(session, 'no member');
        return;
      }
      const { member, socket } = arriving;
      if ('refusal' in member) {
        goAway(session, member.refusal);
        return;
      }
      const { peer } = member;
      this.sessions.set(session, peer);
      session.once('close', () => this.sessions.delete(session));
      // A member speaking broken HTTP/2 loses this session, nothing else.
      session.on('error', (error: Error) =>
        this.warnings.warn(
          peer.nodeId,
          { peer: peer.nodeId, reason: error.message },
          'tunnel session failed',
        ),
      );
      widenWindow(session);
      keepAlive(session, socket, peer.nodeId, log);
      session.on('stream', (stream, headers) => {
        // A stream's failure is its own (the handler's splice sees it as a close).
        stream.on('error', () => stream.destroy());
        const answer = (status: number, reason: string) => {
          if (stream.closed || stream.destroyed) return;
          stream.respond(
            { ':status': status, [REFUSAL_HEADER]: reason.replace(/[\r\n]/g, ' ') },
            { endStream: true },
          );
        };
        const target = headers[TARGET_HEADER];
        if (headers[':method'] !== 'CONNECT' || typeof target !== 'string') {
          this.warnings.warn(
            peer.nodeId,
            { peer: peer.nodeId, method: headers[':method'] },
            'tunnel stream refused: not a CONNECT naming its target',
          );
          answer(400, 'a tunnel stream is a CONNECT naming its target');
          return;
        }
        const serve = handler();
        if (!serve) {
          answer(404, 'this node serves no such stream');
          return;
        }
        const asOf = Number(headers[AS_OF_HEADER]);
        serve({
          peer,
          target,
          asOf: Number.isSafeInteger(asOf) && asOf > 0 ? asOf : 0,
          accept: () => {
            if (!stream.headersSent && !stream.closed && !stream.destroyed)
              stream.respond({ ':status': 200 });
            return stream;
          },
          refuse: answer,
        });
      });
    });
  }

  /** Serves a session on an authenticated member's connection, or refuses it saying why. */
  take(socket: TLSSocket, member: { peer: Peer } | { refusal: string }): void {
    this.arriving = { member, socket };
    try {
      this.server.emit('connection', socket);
    } finally {
      this.arriving = undefined;
    }
  }

  /**
   * Drops, streams and all, the sessions of members whose certificates are not honoured now; the
   * reason goes to the member in the GOAWAY.
   */
  drop(refusal: (peer: Peer) => string | undefined): void {
    for (const [session, peer] of this.sessions) {
      const reason = refusal(peer);
      if (!reason) continue;
      this.log.warn(
        { peer: peer.nodeId, serial: peer.serial, reason },
        'certificate no longer honoured: dropping its tunnel session',
      );
      goAway(session, reason);
    }
  }

  close(): void {
    for (const session of this.sessions.keys()) session.destroy();
  }
}

/** Ends a session for its certificate, telling the member why (the GOAWAY's debug data). */
function goAway(session: ServerHttp2Session, reason: string): void {
  session.goaway(constants.NGHTTP2_INADEQUATE_SECURITY, 0, Buffer.from(reason));
  session.close();
}

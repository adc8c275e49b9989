/**
 * Streams between agents, many to one long-lived mTLS session per peer: HTTP/2 CONNECT, as
 * Istio's HBONE does, so a connection to another node's task costs a stream (one round trip, no
 * handshake), each with its own flow control, half-close both ways and resets carried as resets.
 * The session speaks HTTP/2 under an ALPN name of its own on the node's one port: a client that
 * offers h2 there (curl at the control API) is still answered in HTTP/1.1.
 */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectSession,
  constants,
  type Http2Session,
} from 'node:http2';
import type { Socket } from 'node:net';
import {
  type ConnectionOptions,
  connect,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
} from 'node:tls';
import type { Logger } from 'pino';
import type { NodeIdentity } from '../pki/identity.js';
import { splitHostPort } from './address.js';
import { REFUSAL_HEADER } from './dial.js';
import { TransportError } from './errors.js';
import { clientTlsOptions, type Peer, type PeerPolicy, peerFromCertificate } from './tls.js';

export const TUNNEL_ALPN = 'mesh-tunnel/1';
/** What a stream asks for, in the serving node's terms (see proxy/stream-target.ts). */
export const TARGET_HEADER = 'mesh-target';
/**
 * The index of the cluster state the opener chose the target from: a node whose own replica is
 * behind it may wait to catch up before it says the target is not there.
 */
export const AS_OF_HEADER = 'mesh-as-of';

/**
 * Both ways: room for a burst of streams, and windows wide enough that a bulk transfer is not
 * held to 64 KiB a round trip; the session's window is widened to match once it is up.
 */
export const TUNNEL_SETTINGS = {
  enablePush: false,
  initialWindowSize: 1024 * 1024,
  maxConcurrentStreams: 10_000,
};
export const TUNNEL_SESSION_WINDOW = 32 * 1024 * 1024;
/** nghttp2 refuses new streams past this much buffered (Node's default, 10 MB, is one window). */
export const TUNNEL_SESSION_MEMORY_MB = 256;
/** A session that leaves a ping unanswered this long is dead: its streams fail, new ones redial. */
const PING_INTERVAL_MS = 10_000;

/** Widens the session's receive window (the streams' come from the settings). */
export function widenWindow(session: Http2Session): void {
  const widen = () => session.setLocalWindowSize(TUNNEL_SESSION_WINDOW);
  if (session.connecting) session.once('connect', widen);
  else widen();
}

/**
 * TunnelOptions.tls for a node: its certificate presented, the peer's checked to be the node
 * asked for and honoured, each session from `localAddress`. Parsing the keys costs more than a
 * session's handshake: one context serves every session until the identity is another.
 */
export function sessionTls(
  identity: () => NodeIdentity,
  policy: () => PeerPolicy,
  localAddress: string,
): TunnelOptions['tls'] {
  let context: { of: NodeIdentity; secureContext: SecureContext } | undefined;
  return (nodeId) => {
    const current = identity();
    const tls = clientTlsOptions(current, policy(), nodeId);
    if (context?.of !== current) context = { of: current, secureContext: createSecureContext(tls) };
    return { ...tls, secureContext: context.secureContext, localAddress };
  };
}

interface Session {
  session: ClientHttp2Session;
  peer: Peer;
  /** Why the peer sent it away (its GOAWAY), to tell the streams that fail with it. */
  refusal?: string;
}

export interface TunnelOptions {
  /** TLS options for a session to this node: our certificate, and its own checked. */
  tls: (nodeId: string) => ConnectionOptions & { localAddress?: string };
  connectTimeoutMs: number;
  log: Logger;
}

/** This node's sessions to its peers, one per peer, made on first use. */
export class Tunnels {
  /** By peer: the session being made or made (`record`, once it is). */
  private readonly sessions = new Map<string, { pending: Promise<Session>; record?: Session }>();

  constructor(private readonly options: TunnelOptions) {}

  /**
   * A byte stream to what the node at `address` serves under `target`, chosen from the cluster
   * state as of index `asOf` (0: unsaid). Resolves once the peer accepted, paused (pipe() resumes
   * it); rejects with the peer's reason, or when it gave no answer within the connect timeout (a
   * far node that hangs holds its asker no longer: the routing mesh tries another replica).
   */
  async open(
    to: { address: string; nodeId: string },
    target: string,
    asOf = 0,
  ): Promise<ClientHttp2Stream> {
    const { connectTimeoutMs } = this.options;
    const session = await this.session(to);
    return new Promise((resolve, reject) => {
      const stream = session.session.request(
        {
          ':method': 'CONNECT',
          ':authority': to.address,
          [TARGET_HEADER]: target,
          [AS_OF_HEADER]: String(asOf),
        },
        { endStream: false },
      );
      const fail = (error: TransportError) => {
        clearTimeout(timer);
        stream.close(constants.NGHTTP2_CANCEL);
        reject(error);
      };
      // A session that ends under a stream still waiting for its answer (the peer killed: its
      // kernel closed the connection) closes the stream with no error: it fails now, not at the
      // timeout, so the caller moves on to another replica at once.
      const closedUnanswered = () =>
        fail(
          new TransportError(
            'unreachable',
            session.refusal ??
              `the session with ${to.address} closed before the stream was answered (HTTP/2 code ${stream.rstCode})`,
          ),
        );
      const timer = setTimeout(
        () =>
          fail(
            new TransportError(
              'unreachable',
              `no stream from ${to.address} within ${connectTimeoutMs} ms`,
            ),
          ),
        connectTimeoutMs,
      );
      stream.once('response', (headers) => {
        const status = Number(headers[':status']);
        if (status === 200) {
          clearTimeout(timer);
          stream.off('close', closedUnanswered);
          resolve(stream);
          return;
        }
        const refusal = headers[REFUSAL_HEADER] ?? `HTTP ${status}`;
        fail(new TransportError('refused', `refused by peer: ${String(refusal)}`));
      });
      stream.once('error', (error: Error) =>
        fail(new TransportError('unreachable', session.refusal ?? error.message)),
      );
      stream.once('close', closedUnanswered);
    });
  }

  /**
   * This node's certificate was renewed: the sessions made with the old one take no new streams
   * and close once their streams have ended; the next stream to each peer makes a new one.
   */
  renew(): void {
    const old = [...this.sessions.values()];
    this.sessions.clear();
    for (const { pending } of old)
      pending.then(
        (s) => s.session.close(),
        () => undefined,
      );
  }

  /** Drops, streams and all, the sessions to peers whose certificates are not honoured now. */
  drop(refusal: (peer: Peer) => string | undefined): void {
    for (const [key, entry] of this.sessions)
      entry.pending.then(
        ({ session, peer }) => {
          const reason = refusal(peer);
          if (!reason) return;
          this.options.log.warn(
            { peer: peer.nodeId, serial: peer.serial, reason },
            'certificate no longer honoured: dropping its tunnel session',
          );
          if (this.sessions.get(key) === entry) this.sessions.delete(key);
          session.destroy();
        },
        () => undefined,
      );
  }

  close(): void {
    for (const { pending } of this.sessions.values())
      pending.then(
        (s) => s.session.destroy(),
        () => undefined,
      );
    this.sessions.clear();
  }

  private session(to: { address: string; nodeId: string }): Promise<Session> {
    const key = `${to.nodeId}@${to.address}`;
    const known = this.sessions.get(key);
    // One destroyed and not closed yet (its connection still flushing) takes no new streams.
    if (known && !known.record?.session.destroyed) return known.pending;
    const entry: { pending: Promise<Session>; record?: Session } = { pending: this.connect(to) };
    this.sessions.set(key, entry);
    const forget = () => {
      if (this.sessions.get(key) === entry) this.sessions.delete(key);
    };
    entry.pending.then((s) => {
      entry.record = s;
      s.session.once('close', forget);
      // A peer going away (shutting down, or refusing us) takes no new streams on it.
      s.session.once('goaway', forget);
    }, forget);
    return entry.pending;
  }

  private connect(to: { address: string; nodeId: string }): Promise<Session> {
    const { host, port } = splitHostPort(to.address);
    const { connectTimeoutMs, log } = this.options;
    return new Promise((resolve, reject) => {
      const socket: TLSSocket = connect({
        ...this.options.tls(to.nodeId),
        host,
        port,
        ALPNProtocols: [TUNNEL_ALPN],
      });
      // Streams carry request/response traffic: a small write must not wait for the last ACK.
      socket.setNoDelay(true);
      const timer = setTimeout(
        () =>
          fail(
            new TransportError(
              'unreachable',
              `no session with ${to.address} within ${connectTimeoutMs} ms`,
            ),
          ),
        connectTimeoutMs,
      );
      const fail = (error: TransportError) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.once('error', (error: Error) =>
        fail(new TransportError('unreachable', error.message)),
      );
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        if (socket.alpnProtocol !== TUNNEL_ALPN) {
          fail(new TransportError('refused', `${to.address} takes no tunnel sessions`));
          return;
        }
        const peer = peerFromCertificate(socket.getPeerCertificate(), to.address);
        const session = connectSession(`https://${to.address}`, {
          createConnection: () => socket,
          settings: TUNNEL_SETTINGS,
          maxSessionMemory: TUNNEL_SESSION_MEMORY_MB,
          peerMaxConcurrentStreams: TUNNEL_SETTINGS.maxConcurrentStreams,
        });
        widenWindow(session);
        const record: Session = { session, peer };
        session.on('goaway', (code: number, _last: number, data?: Buffer) => {
          if (code !== constants.NGHTTP2_NO_ERROR && data?.length)
            record.refusal = `refused by peer: ${data.toString()}`;
        });
        session.on('error', (error: Error) =>
          log.debug({ peer: to.nodeId, reason: error.message }, 'tunnel session failed'),
        );
        keepAlive(session, socket, to.nodeId, log);
        resolve(record);
      });
    });
  }
}

/**
 * Pings the session while it is open; one left unanswered for a whole interval means the peer is
 * gone without a word (a cut link, a frozen process), and the session is destroyed so its
 * streams fail now. Its connection goes with it: a session waits for its connection to flush
 * before it closes, and one whose peer takes nothing more would never close (soak: a session to a
 * killed and restarted agent stayed, destroyed, for minutes, and every stream on it failed). The
 * connection is the socket itself, not `session.socket`: that is a guard that throws on destroy()
 * (an agent died of it, in a timer, the first time a ping went unanswered).
 */
export function keepAlive(
  session: Http2Session,
  connection: Socket,
  peer: string,
  log: Logger,
  intervalMs = PING_INTERVAL_MS,
): void {
  let waiting = false;
  const timer = setInterval(() => {
    if (waiting) {
      log.warn({ peer }, `tunnel session: no answer to a ping in ${intervalMs} ms; closing`);
      clearInterval(timer);
      session.destroy();
      connection.destroy();
      return;
    }
    waiting = true;
    session.ping((error) => {
      if (!error) waiting = false;
    });
  }, intervalMs);
  timer.unref();
  session.once('close', () => clearInterval(timer));
}

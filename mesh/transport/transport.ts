import type { ClientHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { LimitedLog } from '../limited-log.js';
import type { NodeIdentity } from '../pki/identity.js';
import {
  type Channel,
  CLOSE_REFUSED,
  CLOSE_SHUTDOWN,
  type Handler,
  type Liveness,
} from './channel.js';
import { PeerLink } from './link.js';
import { type AnonymousRoute, Listener, type RequestRoute } from './listener.js';
import type { Admission, Peer, PeerPolicy } from './tls.js';
import type { StreamHandler } from './tunnel-server.js';
import { sessionTls, Tunnels } from './tunnels.js';

export interface TransportOptions {
  identity: NodeIdentity;
  /** Address to listen on; outbound connections leave from it too. */
  host: string;
  /** 0 lets the system choose; listen() returns the real one. */
  port: number;
  log: Logger;
  join?: AnonymousRoute;
  /** Plain HTTPS requests under a path: the operators' control API. */
  requests?: RequestRoute;
  /**
   * Which certificates are honoured, beyond the CA's signature: asked of every connection, inbound
   * and outbound, and of every live one at recheck().
   */
  admission?: Admission;
  maxFrameBytes?: number;
  /** Messages larger than a frame go in parts, up to this size. */
  maxMessageBytes?: number;
  maxBufferedBytes?: number;
  /** How a connection notices a dead peer (ping interval, silence before closing). */
  liveness?: Liveness;
  maxQueue?: number;
  /** Refused connections logged per remote address and minute (10); past that, only counted. */
  refusalLogsPerMinute?: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

/** A peer by its listening address; with a node ID, a different node there is refused. */
export type PeerAddress = string | { address: string; nodeId?: string };

const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Room for the whole cluster state in one Raft snapshot, or a backup, on a small team's cluster. */
const DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024;

/**
 * The node-to-node channel: one mTLS WebSocket port in, one link per peer out. Messages are
 * dispatched to handlers by type, whichever direction the connection was dialled in.
 */
export class Transport {
  private readonly handlers = new Map<string, Handler>();
  private readonly links = new Map<string, PeerLink>();
  private readonly channels = new Set<Channel>();
  private readonly listener: Listener;
  private readonly requestTimeoutMs: number;
  /** What a peer can make its channels warn about, a line a minute per peer and kind. */
  private readonly warnings: LimitedLog;
  private listening: string | undefined;
  private readonly peerLost = new Set<(nodeId: string) => void>();
  private readonly trustChanged = new Set<() => void>();
  private readonly tunnels: Tunnels;
  private streamHandler: StreamHandler | undefined;

  constructor(private readonly options: TransportOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.warnings = new LimitedLog(options.log, 1);
    this.listener = new Listener({
      identity: options.identity,
      policy: this.policy,
      handlers: this.handlers,
      limits: this.limits,
      log: options.log,
      warnings: this.warnings,
      join: options.join,
      requests: options.requests,
      adopt: (channel) => this.adopt(channel),
      streams: () => this.streamHandler,
      refusalLogsPerMinute: options.refusalLogsPerMinute ?? 10,
    });
    this.tunnels = new Tunnels({
      tls: sessionTls(
        () => this.options.identity,
        () => this.policy,
        this.options.host,
      ),
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
      log: options.log,
    });
  }

  get nodeId(): string {
    return this.options.identity.nodeId;
  }

  /** What this node presents and trusts now (renewals and CA rotations change it). */
  get identity(): NodeIdentity {
    return this.options.identity;
  }

  /** Why a peer's certificate is not honoured now, or undefined when it is. */
  refusal(peer: Pick<Peer, 'nodeId' | 'serial'>): string | undefined {
    return this.options.admission?.(peer);
  }

  /**
   * Called whenever what this node presents or honours may have changed: a renewed identity, a
   * recheck of the live connections (a node removed, a certificate retired).
   */
  onTrustChange(listener: () => void): void {
    this.trustChanged.add(listener);
  }

  /** host:port this node listens on, once listen() has resolved. */
  get address(): string {
    if (!this.listening) throw new Error('transport is not listening yet');
    return this.listening;
  }

  handle(type: string, handler: Handler): void {
    if (this.handlers.has(type)) throw new Error(`a handler for "${type}" is already registered`);
    this.handlers.set(type, handler);
  }

  async listen(): Promise<string> {
    const port = await this.listener.listen(this.options.host, this.options.port);
    this.listening = `${this.options.host}:${port}`;
    this.options.log.info({ address: this.listening }, 'transport listening');
    return this.listening;
  }

  /** One-way, fire and forget; throws TransportError when the frame cannot even be queued. */
  send(to: PeerAddress, type: string, body: unknown): void {
    this.link(to).send(type, body);
  }

  request(
    to: PeerAddress,
    type: string,
    body: unknown,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    return this.link(to).request(type, body, options.timeoutMs ?? this.requestTimeoutMs);
  }

  /** Serves streams members ask for (see openStream); without a handler they are refused. */
  serveStreams(handler: StreamHandler): void {
    this.streamHandler = handler;
  }

  /**
   * A byte stream to what the node at `address` serves under `target`, checked to be that node:
   * a stream of the tunnel session with it (its own connection, apart from the channel's, so a
   * busy stream never holds up gossip or Raft).
   */
  openStream(
    to: { address: string; nodeId: string },
    target: string,
    asOf?: number,
  ): Promise<ClientHttp2Stream> {
    return this.tunnels.open(to, target, asOf);
  }

  /** Called with the peer's node ID whenever a connection to it closes or a dial to it fails. */
  onPeerLost(listener: (nodeId: string) => void): void {
    this.peerLost.add(listener);
  }

  /**
   * This node's certificate was renewed: new connections (accepted and dialled) present the new
   * one; connections already open go on, as their handshakes are done.
   */
  renewIdentity(identity: NodeIdentity): void {
    this.options.identity = identity;
    this.listener.setIdentity(identity);
    this.tunnels.renew();
    for (const link of this.links.values()) link.setIdentity(identity);
    for (const listener of this.trustChanged) listener();
  }

  /**
   * Asks the admission again of every live connection (a node was removed, a certificate retired)
   * and drops those it refuses now, with the reason logged; the peer has to handshake again.
   */
  recheck(): void {
    const refusal = (peer: Peer) => this.refusal(peer);
    for (const channel of this.channels) {
      const reason = refusal(channel.peer);
      if (!reason) continue;
      this.options.log.warn(
        { peer: channel.peer.nodeId, serial: channel.peer.serial, reason },
        'certificate no longer honoured: dropping its live connection',
      );
      channel.close(CLOSE_REFUSED, reason);
    }
    this.tunnels.drop(refusal);
    this.listener.recheck(refusal);
    for (const listener of this.trustChanged) listener();
  }

  async close(): Promise<void> {
    this.tunnels.close();
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const channel of this.channels) channel.close(CLOSE_SHUTDOWN, 'shutting down');
    await this.listener.close();
  }

  private get policy(): PeerPolicy {
    return { clusterId: this.options.identity.clusterId, admission: this.options.admission };
  }

  private get limits() {
    return {
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxBufferedBytes: this.options.maxBufferedBytes ?? 16 * 1024 * 1024,
      liveness: this.options.liveness,
    };
  }

  private link(to: PeerAddress): PeerLink {
    const { address, nodeId } = typeof to === 'string' ? { address: to, nodeId: undefined } : to;
    const key = nodeId ? `${nodeId}@${address}` : address;
    let link = this.links.get(key);
    if (!link) {
      link = new PeerLink(address, nodeId, {
        identity: this.options.identity,
        policy: this.policy,
        handlers: this.handlers,
        limits: this.limits,
        log: this.options.log,
        warnings: this.warnings,
        bindAddress: this.options.host,
        maxQueue: this.options.maxQueue ?? 1024,
        // A dial into a cut link hangs until its timeout, then waits out the backoff: together
        // they bound how long a healed link stays unnoticed (about 5 s at worst).
        backoff: this.options.backoff ?? { initialMs: 100, maxMs: 2000 },
        connectTimeoutMs: this.options.connectTimeoutMs ?? 3000,
        adopt: (channel) => this.adopt(channel),
        unreachable: (nodeId) => this.lost(nodeId),
      });
      this.links.set(key, link);
    }
    return link;
  }

  private adopt(channel: Channel): void {
    this.channels.add(channel);
    channel.onClose(() => {
      this.channels.delete(channel);
      this.lost(channel.peer.nodeId);
    });
  }

  private lost(nodeId: string): void {
    for (const listener of this.peerLost) listener(nodeId);
  }
}

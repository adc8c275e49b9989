import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { TransportError } from './errors.js';
import {
  decodeFrame,
  encodeFrame,
  FAILURE,
  type Frame,
  FrameError,
  MESSAGE,
  REQUEST,
  RESPONSE,
} from './frame.js';
import type { Peer } from './tls.js';

/** Answers a request (its return value is the response) or consumes a one-way message. */
export type Handler = (body: unknown, from: Peer) => unknown;
export type Handlers = ReadonlyMap<string, Handler>;

export interface ChannelLimits {
  maxFrameBytes: number;
  /** Above this many bytes waiting in the socket, sends are refused rather than buffered. */
  maxBufferedBytes: number;
  /** How the channel notices a dead peer; the defaults suit SWIM's timings. */
  liveness?: Liveness;
}

export interface Liveness {
  /** A ping this often; the peer's WebSocket answers it without its application. */
  heartbeatMs: number;
  /** Nothing heard for this long (not even a pong): the connection is dead, and closed. */
  silenceMs: number;
}

// Inside SWIM's suspicion timeout (4-6 s on small clusters): a cut link is closed, and so noticed
// and redialled, before the member is declared dead; long enough that a busy event loop is not.
const DEFAULT_LIVENESS: Liveness = { heartbeatMs: 1000, silenceMs: 5000 };

export const CLOSE_MALFORMED = 1008;
export const CLOSE_REVOKED = 4003;
export const CLOSE_SHUTDOWN = 1001;
// A peer that does not answer our close frame is cut off after this long.
const CLOSE_GRACE_MS = 1000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One authenticated WebSocket speaking the frame protocol: requests, responses, messages. It pings
 * its peer and closes itself after a silence, so that a cut link (which TCP would keep open for
 * many minutes of retransmissions) is noticed in seconds.
 */
export class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly closeListeners: Array<(reason: string) => void> = [];
  private closedReason: string | undefined;
  private lastHeard = Date.now();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly ws: WebSocket,
    readonly peer: Peer,
    private readonly handlers: Handlers,
    private readonly limits: ChannelLimits,
    private readonly log: Logger,
  ) {
    const liveness = limits.liveness ?? DEFAULT_LIVENESS;
    const heard = () => {
      this.lastHeard = Date.now();
    };
    ws.on('pong', heard);
    ws.on('ping', heard);
    ws.on('message', (data, isBinary) => {
      heard();
      this.receive(data, isBinary);
    });
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard > liveness.silenceMs) this.silent(liveness.silenceMs);
      else ws.ping();
    }, liveness.heartbeatMs);
    this.heartbeat.unref();
    ws.on('error', (error) => {
      this.log.warn({ peer: peer.nodeId, remote: peer.remote, err: error }, 'connection error');
    });
    ws.on('close', (code, reason) => this.closed(`closed by ${code} ${reason.toString()}`.trim()));
  }

  get isOpen(): boolean {
    return this.closedReason === undefined;
  }

  send(type: string, body: unknown): void {
    this.write({ kind: MESSAGE, type, body });
  }

  request(type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.write({ kind: REQUEST, id, type, body });
      } catch (error) {
        reject(error);
        return;
      }
      const sent = Date.now();
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // Nothing at all heard since: the link is dead, not the handler slow.
        if (this.lastHeard < sent) this.silent(Date.now() - sent);
        reject(
          new TransportError(
            'timeout',
            `request "${type}" to node ${this.peer.nodeId} timed out after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  close(code: number, reason: string): void {
    if (this.closedReason !== undefined) return;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    this.closed(reason);
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closedReason !== undefined) listener(this.closedReason);
    else this.closeListeners.push(listener);
  }

  private write(frame: Frame): void {
    if (this.closedReason !== undefined) {
      throw new TransportError('closed', `connection to node ${this.peer.nodeId} is closed`);
    }
    const data = encodeFrame(frame);
    if (data.length > this.limits.maxFrameBytes) {
      throw new TransportError(
        'too_large',
        `frame of ${data.length} bytes exceeds the ${this.limits.maxFrameBytes}-byte limit`,
      );
    }
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      throw new TransportError('queue_full', `send buffer to node ${this.peer.nodeId} is full`);
    }
    this.ws.send(data);
  }

  /** The peer has said nothing for too long: drop the connection at once, no closing handshake. */
  private silent(forMs: number): void {
    if (this.closedReason !== undefined) return;
    const reason = `nothing heard for ${forMs} ms`;
    this.log.warn(
      { peer: this.peer.nodeId, remote: this.peer.remote, reason },
      'connection dead, closing',
    );
    this.ws.terminate();
    this.closed(reason);
  }

  private closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearInterval(this.heartbeat);
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new TransportError('closed', `connection to node ${this.peer.nodeId} closed: ${reason}`),
      );
      this.pending.delete(id);
    }
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  private receive(data: RawData, isBinary: boolean): void {
    let frame: Frame;
    try {
      if (!isBinary || !Buffer.isBuffer(data)) throw new FrameError('text frame');
      frame = decodeFrame(data);
    } catch (error) {
      this.log.warn(
        { peer: this.peer.nodeId, remote: this.peer.remote, reason: (error as Error).message },
        'malformed frame refused, closing the connection',
      );
      this.close(CLOSE_MALFORMED, 'malformed frame');
      return;
    }
    switch (frame.kind) {
      case MESSAGE:
        this.dispatchMessage(frame.type, frame.body);
        return;
      case REQUEST:
        this.dispatchRequest(frame.id, frame.type, frame.body);
        return;
      case RESPONSE:
      case FAILURE:
        this.settle(frame);
        return;
    }
  }

  private settle(frame: Frame & { id: number }): void {
    const pending = this.pending.get(frame.id);
    if (!pending) return; // answered after its timeout: the caller has already been told
    this.pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.kind === RESPONSE) pending.resolve(frame.body);
    else if (frame.kind === FAILURE) pending.reject(new TransportError('remote', frame.message));
  }

  private dispatchMessage(type: string, body: unknown): void {
    const handler = this.handlers.get(type);
    if (!handler) {
      this.log.warn({ peer: this.peer.nodeId, type }, 'message of unknown type dropped');
      return;
    }
    Promise.resolve()
      .then(() => handler(body, this.peer))
      .catch((error: unknown) => {
        this.log.warn({ peer: this.peer.nodeId, type, err: error }, 'message handler failed');
      });
  }

  private dispatchRequest(id: number, type: string, body: unknown): void {
    const handler = this.handlers.get(type);
    const answer = handler
      ? Promise.resolve().then(() => handler(body, this.peer))
      : Promise.reject(new Error(`no handler for request type "${type}"`));
    answer
      .then((result) => this.reply({ kind: RESPONSE, id, body: result }))
      .catch((error: unknown) =>
        this.reply({ kind: FAILURE, id, message: (error as Error).message }),
      )
      .catch((error: unknown) => {
        this.log.warn({ peer: this.peer.nodeId, type, err: error }, 'could not send response');
      });
  }

  private reply(frame: Frame): void {
    if (this.closedReason === undefined) this.write(frame);
  }
}

import type { RawData, WebSocket } from 'ws';
import type { LimitedLog } from '../limited-log.js';
import { everyShared } from '../shared-interval.js';
import { splitHostPort } from './address.js';
import { TransportError } from './errors.js';
import {
  decodeFrame,
  encodeFrame,
  FAILURE,
  type Frame,
  FrameError,
  MESSAGE,
  PART,
  PART_OVERHEAD_BYTES,
  type Part,
  REQUEST,
  RESPONSE,
} from './frame.js';
import type { Peer } from './tls.js';

/** Answers a request (its return value is the response) or consumes a one-way message. */
export type Handler = (body: unknown, from: Peer) => unknown;
export type Handlers = ReadonlyMap<string, Handler>;

export interface ChannelLimits {
  maxFrameBytes: number;
  /** A message larger than a frame goes in parts; larger than this, it is refused. */
  maxMessageBytes: number;
  /** Above this many bytes waiting in the socket, sends are refused rather than buffered. */
  maxBufferedBytes: number;
  /** How the channel notices a dead peer; the defaults suit SWIM's timings. */
  liveness?: Liveness;
}

export interface Liveness {
  /**
   * Looked at this often: a ping when nothing was heard for as long (the peer's WebSocket answers
   * it without its application).
   */
  heartbeatMs: number;
  /** Nothing heard for this long (not even a pong): the connection is dead, and closed. */
  silenceMs: number;
}

// Inside SWIM's suspicion timeout (4-6 s on small clusters): a cut link is closed, and so noticed
// and redialled, before the member is declared dead; long enough that a busy event loop is not.
export const DEFAULT_LIVENESS: Liveness = { heartbeatMs: 1000, silenceMs: 5000 };

export const CLOSE_MALFORMED = 1008;
export const CLOSE_REFUSED = 4003;
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
 * a peer it has not heard from within a beat and closes itself after a silence, so that a cut
 * link (which TCP would keep open for many minutes of retransmissions) is noticed in seconds.
 */
export class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly closeListeners: Array<(reason: string) => void> = [];
  private closedReason: string | undefined;
  private lastHeard = Date.now();
  private readonly stopBeats: () => void;
  /** The parts of a message too big for one frame received so far, until its last. */
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(
    private readonly ws: WebSocket,
    readonly peer: Peer,
    private readonly handlers: Handlers,
    private readonly limits: ChannelLimits,
    /** What the peer can cause is logged a line a minute per peer and kind (LimitedLog). */
    private readonly warnings: LimitedLog,
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
    this.stopBeats = everyShared(liveness.heartbeatMs, () => {
      const quietMs = Date.now() - this.lastHeard;
      if (quietMs > liveness.silenceMs) this.silent(liveness.silenceMs);
      // A peer heard within the last beat is known alive; a ping would cost both ends a frame
      // (an idle agent's Raft and SWIM traffic makes most pings moot).
      else if (quietMs >= liveness.heartbeatMs) ws.ping();
    });
    ws.on('error', (error) => {
      this.warn({ remote: peer.remote, err: error }, 'connection error');
    });
    ws.on('close', (code, reason) => this.closed(`closed by ${code} ${reason.toString()}`.trim()));
  }

  private warn(fields: Record<string, unknown>, message: string): void {
    const source = `${this.peer.nodeId} ${splitHostPort(this.peer.remote).host}`;
    this.warnings.warn(source, { peer: this.peer.nodeId, ...fields }, message);
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
    const { maxFrameBytes, maxMessageBytes, maxBufferedBytes } = this.limits;
    if (data.length > maxMessageBytes) {
      throw new TransportError(
        'too_large',
        `message of ${data.length} bytes exceeds the ${maxMessageBytes}-byte limit`,
      );
    }
    if (this.ws.bufferedAmount > maxBufferedBytes) {
      throw new TransportError('queue_full', `send buffer to node ${this.peer.nodeId} is full`);
    }
    if (data.length <= maxFrameBytes) {
      this.ws.send(data);
      return;
    }
    // Too big for one frame (a Raft snapshot, a backup): in parts, back to back, so that nothing
    // is sent between them.
    const size = maxFrameBytes - PART_OVERHEAD_BYTES;
    for (let at = 0; at < data.length; at += size) {
      const bytes = data.subarray(at, at + size);
      this.ws.send(encodeFrame({ kind: PART, more: at + size < data.length, bytes }));
    }
  }

  /** The peer has said nothing for too long: drop the connection at once, no closing handshake. */
  private silent(forMs: number): void {
    if (this.closedReason !== undefined) return;
    const reason = `nothing heard for ${forMs} ms`;
    this.warn({ remote: this.peer.remote, reason }, 'connection dead, closing');
    this.ws.terminate();
    this.closed(reason);
  }

  private closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.stopBeats();
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
      const whole = this.assemble(decodeFrame(data));
      if (!whole) return;
      frame = whole;
    } catch (error) {
      this.warn(
        { remote: this.peer.remote, reason: (error as Error).message },
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

  /** A whole frame, or undefined while the parts of one are still arriving. */
  private assemble(received: Frame | Part): Frame | undefined {
    if (received.kind !== PART) {
      if (this.parts.length > 0) throw new FrameError('a frame between the parts of another');
      return received;
    }
    this.partBytes += received.bytes.length;
    if (this.partBytes > this.limits.maxMessageBytes)
      throw new FrameError(`parts of more than ${this.limits.maxMessageBytes} bytes`);
    this.parts.push(received.bytes);
    if (received.more) return undefined;
    const whole = decodeFrame(Buffer.concat(this.parts));
    this.parts = [];
    this.partBytes = 0;
    if (whole.kind === PART) throw new FrameError('parts within parts');
    return whole;
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
      this.warn({ type }, 'message of unknown type dropped');
      return;
    }
    Promise.resolve()
      .then(() => handler(body, this.peer))
      .catch((error: unknown) => {
        this.warn({ type, err: error }, 'message handler failed');
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
        this.warn({ type, err: error }, 'could not send response');
      });
  }

  private reply(frame: Frame): void {
    if (this.closedReason === undefined) this.write(frame);
  }
}

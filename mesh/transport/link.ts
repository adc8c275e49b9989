import type { Logger } from 'pino';
import type { LimitedLog } from '../limited-log.js';
import type { NodeIdentity } from '../pki/identity.js';
import { Channel, type ChannelLimits, CLOSE_SHUTDOWN, type Handlers } from './channel.js';
import { type Dialled, dial } from './dial.js';
import { TransportError } from './errors.js';
import { clientTlsOptions, type PeerPolicy, peerFromCertificate } from './tls.js';

/** OpenSSL's words for a certificate whose CA this node does not trust. */
const UNTRUSTED_ISSUER =
  /local issuer certificate|self[- ]signed certificate in certificate chain/i;
const UNTRUSTED_HINT =
  'the peer presents a certificate of a CA this node does not trust: if the cluster CA was rotated while this node was away, get a token on a running node ("mesh token") and run "mesh join TOKEN --data-dir DIR" with this node’s data dir';

export const MEMBER_PATH = '/mesh/v1';

/** What both ends of a connection need: who we are, whom we accept, and what a channel runs. */
export interface ChannelContext {
  identity: NodeIdentity;
  policy: PeerPolicy;
  handlers: Handlers;
  limits: ChannelLimits;
  log: Logger;
  /** Warnings a peer can cause, limited (shared by the transport's channels). */
  warnings: LimitedLog;
}

export interface LinkContext extends ChannelContext {
  /** Local address outbound connections leave from, so peers see our own address. */
  bindAddress?: string;
  maxQueue: number;
  backoff: { initialMs: number; maxMs: number };
  connectTimeoutMs: number;
  /** Told of every channel the link opens, so that recheck() reaches it. */
  adopt: (channel: Channel) => void;
  /** A dial to a known node failed. */
  unreachable: (nodeId: string) => void;
}

type Queued =
  | { kind: 'message'; type: string; body: unknown }
  | {
      kind: 'request';
      type: string;
      body: unknown;
      deadline: number;
      resolve: (value: unknown) => void;
      reject: (error: Error) => void;
      timer: NodeJS.Timeout;
    };

/**
 * Our outbound connection to one peer address. It dials on first use, queues (boundedly) while
 * connecting, and redials with exponential backoff while it has something to deliver.
 */
export class PeerLink {
  private channel: Channel | undefined;
  private dialing = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private shut = false;
  private queue: Queued[] = [];

  constructor(
    readonly address: string,
    private readonly expectedNodeId: string | undefined,
    private readonly ctx: LinkContext,
  ) {}

  /** A renewed certificate: the next dial presents it; the open connection goes on. */
  setIdentity(identity: NodeIdentity): void {
    this.ctx.identity = identity;
  }

  send(type: string, body: unknown): void {
    if (this.channel?.isOpen) {
      this.channel.send(type, body);
      return;
    }
    this.enqueue({ kind: 'message', type, body });
  }

  request(type: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (this.channel?.isOpen) return this.channel.request(type, body, timeoutMs);
    return new Promise((resolve, reject) => {
      const entry: Queued = {
        kind: 'request',
        type,
        body,
        deadline: Date.now() + timeoutMs,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.queue = this.queue.filter((q) => q !== entry);
          reject(
            new TransportError(
              'unsent',
              `request "${type}" to ${this.address} not sent within ${timeoutMs} ms (not connected)`,
            ),
          );
        }, timeoutMs),
      };
      this.enqueue(entry);
    });
  }

  close(): void {
    this.shut = true;
    clearTimeout(this.retry);
    this.rejectRequests(new TransportError('closed', `link to ${this.address} closed`));
    this.queue = [];
    this.channel?.close(CLOSE_SHUTDOWN, 'shutting down');
  }

  private enqueue(entry: Queued): void {
    if (this.shut) throw new TransportError('closed', `link to ${this.address} closed`);
    if (this.queue.length >= this.ctx.maxQueue) {
      const error = new TransportError(
        'queue_full',
        `send queue to ${this.address} is full (${this.ctx.maxQueue} waiting)`,
      );
      if (entry.kind === 'request') {
        clearTimeout(entry.timer);
        entry.reject(error);
        return;
      }
      throw error;
    }
    this.queue.push(entry);
    this.dial();
  }

  private dial(): void {
    if (this.dialing || this.retry || this.shut || this.channel?.isOpen) return;
    this.dialing = true;
    dial(`wss://${this.address}${MEMBER_PATH}`, {
      ...clientTlsOptions(this.ctx.identity, this.ctx.policy, this.expectedNodeId),
      localAddress: this.ctx.bindAddress,
      maxPayload: this.ctx.limits.maxFrameBytes,
      handshakeTimeout: this.ctx.connectTimeoutMs,
    }).then(
      (dialled) => this.opened(dialled),
      (error: TransportError) => this.dialFailed(error),
    );
  }

  private opened({ ws, socket }: Dialled): void {
    this.dialing = false;
    this.failures = 0;
    const peer = peerFromCertificate(socket.getPeerCertificate(), this.address);
    const channel = new Channel(ws, peer, this.ctx.handlers, this.ctx.limits, this.ctx.warnings);
    if (this.shut) {
      channel.close(CLOSE_SHUTDOWN, 'shutting down');
      return;
    }
    this.channel = channel;
    this.ctx.adopt(channel);
    channel.onClose((reason) => {
      if (this.channel === channel) this.channel = undefined;
      this.ctx.log.debug({ peer: peer.nodeId, address: this.address, reason }, 'link closed');
      if (this.queue.length > 0) this.scheduleRetry();
    });
    this.flush(channel);
  }

  private dialFailed(error: TransportError): void {
    this.dialing = false;
    this.failures += 1;
    // A peer that stays away is dialled again and again: a line a minute per address says so.
    this.ctx.warnings.warn(
      this.address,
      {
        address: this.address,
        reason: error.message,
        failures: this.failures,
        ...(UNTRUSTED_ISSUER.test(error.message) && { hint: UNTRUSTED_HINT }),
      },
      'dial failed',
    );
    // Requests are told at once so callers can try elsewhere; one-way messages wait for a redial.
    this.rejectRequests(
      new TransportError(error.code, `cannot reach ${this.address}: ${error.message}`),
    );
    if (this.queue.length > 0) this.scheduleRetry();
    if (this.expectedNodeId) this.ctx.unreachable(this.expectedNodeId);
  }

  private scheduleRetry(): void {
    if (this.retry || this.shut) return;
    const { initialMs, maxMs } = this.ctx.backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, this.failures - 1));
    const delay = base * (0.8 + Math.random() * 0.4);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.dial();
    }, delay);
    this.retry.unref();
  }

  private flush(channel: Channel): void {
    const queued = this.queue;
    this.queue = [];
    for (const entry of queued) {
      try {
        if (entry.kind === 'message') {
          channel.send(entry.type, entry.body);
        } else {
          clearTimeout(entry.timer);
          const remaining = Math.max(1, entry.deadline - Date.now());
          channel.request(entry.type, entry.body, remaining).then(entry.resolve, entry.reject);
        }
      } catch (error) {
        if (entry.kind === 'request') entry.reject(error as Error);
        else this.ctx.log.warn({ address: this.address, err: error }, 'queued message dropped');
      }
    }
  }

  private rejectRequests(error: Error): void {
    for (const entry of this.queue) {
      if (entry.kind === 'request') {
        clearTimeout(entry.timer);
        entry.reject(error);
      }
    }
    this.queue = this.queue.filter((entry) => entry.kind === 'message');
  }
}

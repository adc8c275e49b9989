import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { splitHostPort } from '../../mesh/transport/address.js';

/** An upstream that does not answer within this is given up on: the client gets SERVFAIL. */
export const FORWARD_TIMEOUT_MS = 2000;
/** Queries waiting for upstreams at once; more are answered SERVFAIL rather than queued. */
const MAX_PENDING = 4096;

interface Pending {
  id: number;
  resolve: (answer: Buffer | undefined) => void;
  timer: NodeJS.Timeout;
}

/** The host's resolvers (`nameserver` lines of /etc/resolv.conf), as host:port, but not these. */
export function hostResolvers(exclude: ReadonlySet<string>, path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)]
    .map((m) => m[1] as string)
    .filter((ip) => !exclude.has(ip) && ip !== '127.0.0.11')
    .map((ip) => `${ip}:53`);
}

/**
 * Sends queries for names outside the zone to upstream resolvers over UDP, one socket for all,
 * each query under an ID of its own; an answer comes back with the client's ID. No answer in
 * time (or no upstream at all) resolves undefined, for the caller to answer SERVFAIL.
 */
export class UpstreamResolvers {
  private socket: Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = Math.floor(Math.random() * 65_536);
  private turn = 0;

  constructor(
    private readonly upstreams: string[],
    private readonly log: Logger,
    private readonly timeoutMs = FORWARD_TIMEOUT_MS,
  ) {}

  resolve(query: Buffer): Promise<Buffer | undefined> {
    const upstream = this.upstreams[this.turn++ % Math.max(1, this.upstreams.length)];
    if (!upstream || this.pending.size >= MAX_PENDING) return Promise.resolve(undefined);
    const socket = this.open();
    let id = this.nextId;
    while (this.pending.has(id)) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    const outgoing = Buffer.from(query);
    outgoing.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.log.debug({ upstream }, 'upstream resolver did not answer in time');
        resolve(undefined);
      }, this.timeoutMs);
      this.pending.set(id, { id: query.readUInt16BE(0), resolve, timer });
      const { host, port } = splitHostPort(upstream);
      socket.send(outgoing, port, host, (error) => {
        if (!error) return;
        this.settle(id, undefined);
        this.log.debug({ upstream, reason: error.message }, 'query not sent upstream');
      });
    });
  }

  close(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, undefined);
    this.socket?.close();
    this.socket = undefined;
  }

  private settle(id: number, answer: Buffer | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (answer) answer.writeUInt16BE(pending.id, 0);
    pending.resolve(answer);
  }

  private open(): Socket {
    if (this.socket) return this.socket;
    const socket = createSocket('udp4');
    socket.on('message', (answer) => {
      if (answer.length >= 12) this.settle(answer.readUInt16BE(0), answer);
    });
    socket.on('error', (error) =>
      this.log.warn({ reason: error.message }, 'upstream socket failed'),
    );
    this.socket = socket;
    return socket;
  }
}

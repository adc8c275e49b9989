import { createSocket, type RemoteInfo } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { whyNotListening } from '../host/port-holder.js';

/** What to do with a connection accepted on host:port. */
export type Accept = (socket: Socket) => void;

/** What to do with a datagram received on host:port; `reply` answers from that address. */
export type Receive = (payload: Buffer, from: RemoteInfo, reply: (payload: Buffer) => void) => void;

/** A listener, open. */
interface Open {
  close(): void;
}

/** Opens a listener on host:port that hands what arrives to the handler; rejects when it cannot. */
type Opener<H> = (host: string, port: number, handler: H) => Promise<Open>;

/**
 * Listeners kept in line with a wanted set of host:port: new ones opened, gone ones closed (a TCP
 * listener's open connections go on). One that cannot open (the port is taken) is remembered with
 * the reason and tried again on the next sync.
 */
export class Listeners<H> {
  private readonly open = new Map<string, Open>();
  private readonly opening = new Set<string>();
  private readonly failures = new Map<string, string>();

  constructor(
    private readonly log: Logger,
    private readonly protocol: 'tcp' | 'udp',
    private readonly opener: Opener<H>,
  ) {}

  /** host:port → why it is not served. */
  get failed(): ReadonlyMap<string, string> {
    return this.failures;
  }

  async sync(wanted: ReadonlyMap<string, H>): Promise<void> {
    for (const [key, listener] of this.open)
      if (!wanted.has(key)) {
        listener.close();
        this.open.delete(key);
      }
    for (const key of this.failures.keys()) if (!wanted.has(key)) this.failures.delete(key);
    await Promise.all(
      [...wanted]
        .filter(([key]) => !this.open.has(key) && !this.opening.has(key))
        .map(([key, handler]) => this.openOne(key, handler)),
    );
  }

  close(): void {
    for (const listener of this.open.values()) listener.close();
    this.open.clear();
  }

  private async openOne(key: string, handler: H): Promise<void> {
    const colon = key.lastIndexOf(':');
    const port = Number(key.slice(colon + 1));
    this.opening.add(key);
    try {
      this.open.set(key, await this.opener(key.slice(0, colon), port, handler));
      if (this.failures.delete(key)) this.log.info({ address: key }, 'listening now');
    } catch (error) {
      const reason = whyNotListening(error as Error, key.slice(0, colon), port, this.protocol);
      if (this.failures.get(key) !== reason)
        this.log.warn({ address: key, reason }, 'cannot listen');
      this.failures.set(key, reason);
    } finally {
      this.opening.delete(key);
    }
  }
}

/**
 * The accept queue a listener asks for (the kernel caps it at net.core.somaxconn, 4096 by
 * default). Node 20's libuv accepts one connection per event-loop iteration, so a busy process
 * takes a burst of new connections slowly: they wait in this queue, where a short one (Node's
 * default, 511) drops their SYNs and each client waits a second or more to send another (the
 * soak's 1,000 connections at each slice: 2,074 overflows a minute with 511, none with 4096).
 */
export const LISTEN_BACKLOG = 4096;

/**
 * TCP listeners holding at most `maxConnections` each (past that they refuse at accept: fd
 * headroom), half-open: a client that finished sending still gets the whole answer.
 */
export function tcpListeners(log: Logger, maxConnections: number): Listeners<Accept> {
  return new Listeners<Accept>(log, 'tcp', async (host, port, accept) => {
    const server = createServer({ allowHalfOpen: true }, accept);
    server.maxConnections = maxConnections;
    server.listen({ host, port, backlog: LISTEN_BACKLOG });
    await once(server, 'listening');
    server.on('error', (error) =>
      log.warn({ address: `${host}:${port}`, reason: error.message }, 'listener error'),
    );
    return server;
  });
}

/** UDP listeners: each datagram to the handler, with a way to answer from the listener's address. */
export function udpListeners(log: Logger): Listeners<Receive> {
  return new Listeners<Receive>(log, 'udp', async (host, port, receive) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.bind({ address: host, port, exclusive: true });
    await once(socket, 'listening');
    socket.on('error', (error) =>
      log.warn({ address: `${host}:${port}/udp`, reason: error.message }, 'listener error'),
    );
    // Flows may outlive their listener by a datagram: their answers then go nowhere.
    let open = true;
    socket.on('message', (payload, from) =>
      receive(payload, from, (answer) => {
        if (open) socket.send(answer, from.port, from.address);
      }),
    );
    return {
      close: () => {
        open = false;
        socket.close();
      },
    };
  });
}

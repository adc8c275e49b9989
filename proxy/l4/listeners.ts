import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

/** What to do with a connection accepted on host:port. */
export type Accept = (socket: Socket) => void;

/**
 * TCP listeners kept in line with a wanted set of host:port: new ones opened, gone ones closed
 * (their open connections go on). One that cannot open (the port is taken) is remembered with
 * the reason and tried again on the next sync.
 */
export class Listeners {
  private readonly servers = new Map<string, Server>();
  private readonly opening = new Set<string>();
  private readonly failures = new Map<string, string>();

  constructor(
    private readonly log: Logger,
    /** Connections one listener holds at most: past that it refuses at accept (fd headroom). */
    private readonly maxConnections: number,
  ) {}

  /** host:port → why it is not served. */
  get failed(): ReadonlyMap<string, string> {
    return this.failures;
  }

  async sync(wanted: ReadonlyMap<string, Accept>): Promise<void> {
    for (const [key, server] of this.servers)
      if (!wanted.has(key)) {
        server.close();
        this.servers.delete(key);
      }
    for (const key of this.failures.keys()) if (!wanted.has(key)) this.failures.delete(key);
    await Promise.all(
      [...wanted]
        .filter(([key]) => !this.servers.has(key) && !this.opening.has(key))
        .map(([key, accept]) => this.open(key, accept)),
    );
  }

  close(): void {
    for (const server of this.servers.values()) server.close();
    this.servers.clear();
  }

  private async open(key: string, accept: Accept): Promise<void> {
    const colon = key.lastIndexOf(':');
    const host = key.slice(0, colon);
    const port = Number(key.slice(colon + 1));
    // Half-open: a client that finished sending still gets the whole answer.
    const server = createServer({ allowHalfOpen: true }, accept);
    server.maxConnections = this.maxConnections;
    this.opening.add(key);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 1024 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (error) =>
        this.log.warn({ address: key, reason: error.message }, 'listener error'),
      );
      this.servers.set(key, server);
      if (this.failures.delete(key)) this.log.info({ address: key }, 'listening now');
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? 'the port is taken on this node'
          : (error as Error).message;
      if (this.failures.get(key) !== reason)
        this.log.warn({ address: key, reason }, 'cannot listen');
      this.failures.set(key, reason);
    } finally {
      this.opening.delete(key);
    }
  }
}

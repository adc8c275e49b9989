import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Which agent on this host serves the host-wide part of the data plane (service addresses on lo,
 * the listeners on them, the DNS address): the one holding an abstract Unix socket named for the
 * cluster. Several agents on one host (the local cluster) would otherwise fight over the same
 * addresses; the others wait, connected to the holder, and one takes over when it goes. The
 * kernel frees the name when its holder dies, however it dies. On a host with one agent, that
 * agent always holds it.
 */
export class HostOwnership {
  private server: Server | undefined;
  private waiting: Socket | undefined;
  private readonly standbys = new Set<Socket>();
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly name: string,
    private readonly log: Logger,
    private readonly onOwned: () => void,
  ) {}

  get owned(): boolean {
    return this.server !== undefined;
  }

  /** Whether other agents of this cluster on this host wait to take over. */
  get othersWaiting(): boolean {
    return this.standbys.size > 0;
  }

  start(): void {
    this.attempt();
  }

  /**
   * This agent is leaving: it never takes over from here on (a holder that stops while this one
   * waits would hand it the host's part, and this one would leave it behind when it exits). A
   * holder keeps serving until it stops.
   */
  withdraw(): void {
    if (this.owned) return;
    this.stopped = true;
    clearTimeout(this.retry);
    this.waiting?.destroy();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.waiting?.destroy();
    for (const socket of this.standbys) socket.destroy();
    this.server?.close();
    this.server = undefined;
  }

  private attempt(): void {
    if (this.stopped) return;
    const server = createServer((socket) => {
      this.standbys.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => this.standbys.delete(socket));
    });
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EADDRINUSE') {
        this.log.error({ reason: error.message }, 'host data plane lock failed');
        return;
      }
      this.wait();
    });
    server.listen(`\0${this.name}`, () => {
      // Withdrawn or stopped while the name was being taken: let it go again at once.
      if (this.stopped) {
        server.close();
        return;
      }
      this.server = server;
      this.log.info(
        { lock: this.name },
        'serving the host data plane (service addresses, DNS address)',
      );
      this.onOwned();
    });
  }

  /** Holds a connection to the current holder: when it closes, the holder is gone. */
  private wait(): void {
    const socket = createConnection(`\0${this.name}`);
    this.waiting = socket;
    const again = () => {
      if (this.waiting !== socket) return;
      this.waiting = undefined;
      if (!this.stopped) this.retry = setTimeout(() => this.attempt(), 100);
    };
    socket.on('error', again);
    socket.on('close', again);
  }
}

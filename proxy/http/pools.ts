import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import { CONNECT_TIMEOUT_MS } from '../l4/forwarder.js';
import type { Endpoint } from '../routing-table.js';

/** Opens a connection to an endpoint's port: directly on this node, through its agent elsewhere. */
export type Connect = (endpoint: Endpoint, target: number) => Promise<Duplex>;

/** Raised to a request when its replica could not be connected to: nothing of it was sent. */
export class ReplicaUnreachable extends Error {
  override name = 'ReplicaUnreachable';
}

/** Idle pooled connections are closed after this (replicas often close theirs at 5 s). */
export const KEEP_ALIVE_MS = 4000;
const KEEPALIVE_PROBE_MS = 60_000;

/** How a pool makes its connections. */
export interface PoolConnects {
  /** A connection to the replica's port itself (to one elsewhere: a stream spliced to it). */
  direct: Connect;
  /**
   * One that outlives the replica's own (to one elsewhere: a stream to its node's HTTP relay),
   * for a replica that closes its connection after each answer: a direct stream would be opened,
   * and the replica dialled, before each request could be sent. The relay parses every request
   * again, so a replica that keeps its connections open is reached directly (bench:proxy across
   * nodes: 136–138 µs of CPU a request over both nodes, against 196–228 through the relay).
   * Without it, `direct` serves every replica.
   */
  outliving?: Connect;
}

/** A replica's pool, and whether that replica was seen closing its connection after an answer. */
interface PoolEntry {
  pool: Pool;
  replicaCloses: boolean;
}

/**
 * Keep-alive connection pools (undici), one per endpoint and port: a request reuses an idle
 * connection to the replica it is sent to, whichever node it runs on.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, PoolEntry>();

  constructor(
    private readonly connects: PoolConnects,
    /** How long a replica may take to start its answer. */
    private readonly headersTimeoutMs: number,
  ) {}

  poolFor(endpoint: Endpoint, target: number): Pool {
    return this.entryFor(endpoint, target).pool;
  }

  /**
   * The replica answered with `Connection: close`: the pool's next connections outlive its own
   * (the one it closes goes as it would have).
   */
  replicaCloses(endpoint: Endpoint, target: number): void {
    this.entryFor(endpoint, target).replicaCloses = true;
  }

  private entryFor(endpoint: Endpoint, target: number): PoolEntry {
    const key = `${endpoint.taskId}/${target}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const made: PoolEntry = {
        pool: this.newPool(endpoint, target, () => made.replicaCloses),
        replicaCloses: false,
      };
      entry = made;
      this.pools.set(key, entry);
    }
    return entry;
  }

  private newPool(endpoint: Endpoint, target: number, replicaCloses: () => boolean): Pool {
    // The origin only names the pool: connections come from `connects`.
    return new Pool(`http://${endpoint.host}:${endpoint.ports.get(target) ?? target}`, {
      connect: (_options, callback) => {
        const limitMs = Math.min(CONNECT_TIMEOUT_MS, this.headersTimeoutMs / 2);
        const connect = (replicaCloses() && this.connects.outliving) || this.connects.direct;
        const dialing = connect(endpoint, target);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            // Whatever it connects to later is not wanted any more.
            dialing.then(
              (socket) => socket.destroy(),
              () => undefined, // it failed on its own too: nothing to close
            );
            reject(new Error(`no connection within ${limitMs} ms`));
          }, limitMs);
        });
        Promise.race([dialing, late]).then(
          (socket) => {
            clearTimeout(timer);
            (socket as Socket).setKeepAlive?.(true, KEEPALIVE_PROBE_MS);
            // A stream through another agent arrives paused; its reader does not resume it.
            socket.resume();
            callback(null, socket as Socket);
          },
          (error: Error) => {
            clearTimeout(timer);
            callback(new ReplicaUnreachable(error.message), null);
          },
        );
      },
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      // Also when the other end says it keeps them longer (another node's relay says 60 s):
      // an idle connection to another node holds a stream and descriptors on both.
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      headersTimeout: this.headersTimeoutMs,
      // A body may stream for ever (server-sent events): no idle limit on it.
      bodyTimeout: 0,
    });
  }

  /**
   * Closes the pools of endpoints no longer in the table: requests in flight finish (a task told
   * to stop drains before its signal), new ones are refused and go elsewhere.
   */
  retain(taskIds: ReadonlySet<string>): void {
    for (const [key, { pool }] of this.pools)
      if (!taskIds.has(key.slice(0, key.lastIndexOf('/')))) {
        void pool.close();
        this.pools.delete(key);
      }
  }

  close(): void {
    for (const { pool } of this.pools.values()) void pool.destroy();
    this.pools.clear();
  }
}

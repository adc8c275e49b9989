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

/**
 * Keep-alive connection pools (undici), one per endpoint and port: a request reuses an idle
 * connection to the replica it is sent to, whichever node it runs on (a pooled connection to a
 * replica on another node is a stream to that node's HTTP relay).
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly connect: Connect,
    /** How long a replica may take to start its answer. */
    private readonly headersTimeoutMs: number,
  ) {}

  poolFor(endpoint: Endpoint, target: number): Pool {
    const key = `${endpoint.taskId}/${target}`;
    let pool = this.pools.get(key);
    if (!pool) {
      // The origin only names the pool: connections come from `connect`.
      pool = new Pool(`http://${endpoint.host}:${endpoint.ports.get(target) ?? target}`, {
        connect: (_options, callback) => {
          const limitMs = Math.min(CONNECT_TIMEOUT_MS, this.headersTimeoutMs / 2);
          const dialing = this.connect(endpoint, target);
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
      this.pools.set(key, pool);
    }
    return pool;
  }

  /**
   * Closes the pools of endpoints no longer in the table: requests in flight finish (a task told
   * to stop drains before its signal), new ones are refused and go elsewhere.
   */
  retain(taskIds: ReadonlySet<string>): void {
    for (const [key, pool] of this.pools)
      if (!taskIds.has(key.slice(0, key.lastIndexOf('/')))) {
        void pool.close();
        this.pools.delete(key);
      }
  }

  close(): void {
    for (const pool of this.pools.values()) void pool.destroy();
    this.pools.clear();
  }
}

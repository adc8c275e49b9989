import type { Server } from 'node:net';

/** The connections a server holds now (its side: what a leak would keep open). */
export function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

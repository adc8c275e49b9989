import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Idle connections stay open as long as both ends do: TCP keepalive finds dead peers instead. */
const KEEPALIVE_MS = 60_000;

/**
 * Joins two connections: bytes flow both ways with backpressure (pipe), a half-close on one side
 * is passed on as a half-close to the other (end), and an error on either closes both. Resolves
 * once both are closed. No timer ever cuts an idle connection.
 */
export function splice(a: Duplex, b: Duplex): Promise<void> {
  // TLS streams between agents included (a TLSSocket is a Socket).
  for (const side of [a, b]) if (side instanceof Socket) side.setKeepAlive(true, KEEPALIVE_MS);
  return new Promise((resolve) => {
    let open = 2;
    const closed = () => {
      open -= 1;
      if (open === 0) resolve();
    };
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      from.pipe(to);
      from.once('error', () => {
        a.destroy();
        b.destroy();
      });
      from.once('close', () => {
        // A reset (not an orderly end) on one side resets the other.
        if (!(from as Socket).readableEnded) to.destroy();
        closed();
      });
    }
  });
}

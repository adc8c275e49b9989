import { constants } from 'node:http2';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Idle connections stay open as long as both ends do: TCP keepalive finds dead peers instead. */
const KEEPALIVE_MS = 60_000;

/** A stream between agents (see mesh/transport/tunnels.ts), as splice needs to see it. */
interface TunnelStream extends Duplex {
  rstCode?: number;
  close(code?: number): void;
}

function isTunnelStream(side: Duplex): side is TunnelStream {
  return 'rstCode' in side;
}

/** Whether a side that closed ended as agreed (its last byte, then its end), not by a reset. */
function endedInOrder(side: Duplex): boolean {
  if (!side.readableEnded) return false;
  return !isTunnelStream(side) || !side.rstCode;
}

/**
 * Ends a side as abruptly as the other ended: a TCP connection with a reset, a stream between
 * agents with a stream reset (the far agent resets its own side in turn), anything else closed.
 * A TCP connection whose FIN was passed on (the other side's half-close) is closed instead: while
 * that FIN is still queued, Node's resetAndDestroy() fails and never closes it (no 'close'; its
 * handle, left for good, held the agent's exit in a spin). The peer gets a reset anyway if it
 * sends more.
 */
function reset(side: Duplex): void {
  if (side.destroyed) return;
  if (isTunnelStream(side)) side.close(constants.NGHTTP2_CANCEL);
  // A Unix socket (an ingress worker's bridge) has no reset to send: it is closed.
  else if (side instanceof Socket && side.remoteAddress !== undefined && !side.writableEnded)
    side.resetAndDestroy();
  else side.destroy();
}

/**
 * Joins two connections: bytes flow both ways with backpressure (pipe), a half-close on one side
 * is passed on as a half-close to the other (end), and a reset or an error on either resets the
 * other. Resolves once both are closed. No timer ever cuts an idle connection.
 */
export function splice(a: Duplex, b: Duplex): Promise<void> {
  for (const side of [a, b]) if (side instanceof Socket) side.setKeepAlive(true, KEEPALIVE_MS);
  return new Promise((resolve) => {
    if (a.destroyed || b.destroyed) {
      // One side went before it was joined (the asker gave up): the other has nobody to talk to.
      reset(a);
      reset(b);
      resolve();
      return;
    }
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
        reset(to);
        from.destroy();
      });
      from.once('close', () => {
        if (!endedInOrder(from)) reset(to);
        closed();
      });
    }
  });
}

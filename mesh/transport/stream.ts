import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { splitHostPort } from './address.js';
import { REFUSAL_HEADER } from './dial.js';
import { TransportError } from './errors.js';
import { STREAM_PATH } from './listener.js';
import { OversizeHead, readHead } from './read-head.js';

const UPGRADE = 'mesh-stream';
/** The answer header is small; a peer that sends more without finishing it is not a member. */
const MAX_HEADER_BYTES = 8192;

/**
 * Opens a byte stream to what a peer serves under `target`, over a connection of its own: TLS with
 * both certificates checked (the options come from clientTlsOptions), then an HTTP upgrade on the
 * peer's one port. Resolves with the socket once the peer accepted, paused (pipe() resumes it);
 * rejects with the peer's reason.
 */
export function openStream(
  address: string,
  target: string,
  tls: ConnectionOptions & { localAddress?: string },
  timeoutMs: number,
  /** Told of each TLS session ticket the peer sends, to resume from (tls.session) next time. */
  onSession?: (session: Buffer) => void,
): Promise<TLSSocket> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    // A half-close of the stream is passed on, not answered by closing (Node honours the option).
    const socket = connect({ ...tls, host, port, allowHalfOpen: true } as ConnectionOptions);
    // Streams carry request/response traffic: a small write must not wait for the last one's ACK.
    socket.setNoDelay(true);
    if (onSession) socket.on('session', onSession);
    const timer = setTimeout(
      () =>
        fail(new TransportError('unreachable', `no stream from ${address} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    readHead(socket, '\r\n\r\n', MAX_HEADER_BYTES).then(
      (header) => {
        clearTimeout(timer);
        const lines = header.toString('latin1').split('\r\n');
        const status = Number(lines[0]?.split(' ')[1]);
        if (status === 101) {
          resolve(socket);
          return;
        }
        const refusal = lines
          .find((l) => l.toLowerCase().startsWith(`${REFUSAL_HEADER}:`))
          ?.slice(REFUSAL_HEADER.length + 1)
          .trim();
        fail(new TransportError('refused', `refused by peer: ${refusal ?? `HTTP ${status}`}`));
      },
      (error: Error) =>
        fail(
          error instanceof OversizeHead
            ? new TransportError('refused', 'oversize answer')
            : new TransportError('unreachable', error.message),
        ),
    );
    socket.once('secureConnect', () => {
      socket.write(
        `GET ${STREAM_PATH}?target=${encodeURIComponent(target)} HTTP/1.1\r\nHost: ${address}\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE}\r\n\r\n`,
      );
    });
  });
}

/** Accepts a stream the listener handed over: the peer may send from now on. */
export function acceptStream(socket: TLSSocket, head: Buffer): TLSSocket {
  // The member's half-close is passed on; this side keeps sending until its own end.
  socket.allowHalfOpen = true;
  socket.setNoDelay(true);
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE}\r\n\r\n`,
  );
  if (head.length > 0) socket.unshift(head);
  return socket;
}

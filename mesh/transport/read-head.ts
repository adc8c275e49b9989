import type { Duplex } from 'node:stream';

/** The peer sent more than a head may hold without ending it. */
export class OversizeHead extends Error {}

/**
 * Reads a protocol's head from a socket, up to `terminator` (a line, an HTTP answer's headers),
 * before the bytes that follow it: resolves with what came before the terminator, puts what came
 * after it back for whoever reads next, and leaves the socket paused. Rejects when the socket
 * fails, ends or closes first, or when `maxBytes` arrive without the terminator.
 */
export function readHead(socket: Duplex, terminator: string, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(terminator);
      if (end < 0) {
        if (buffered.length > maxBytes)
          done(new OversizeHead(`no end of its head within ${maxBytes} bytes`));
        return;
      }
      const rest = buffered.subarray(end + terminator.length);
      done(undefined, buffered.subarray(0, end));
      if (rest.length > 0) socket.unshift(rest);
    };
    const onEnd = () => done(new Error('closed before the end of its head'));
    const done = (error: Error | undefined, head?: Buffer) => {
      socket.off('data', onData);
      socket.off('error', done);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (error) reject(error);
      else resolve(head as Buffer);
    };
    socket.on('data', onData);
    socket.once('error', done);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

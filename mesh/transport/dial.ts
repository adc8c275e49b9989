import type { IncomingMessage } from 'node:http';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { type ClientOptions, WebSocket } from 'ws';
import { TransportError } from './errors.js';

/** Header in which a refusing node says why, so the refused side can tell its user. */
export const REFUSAL_HEADER = 'x-mesh-refused';

export interface Dialled {
  ws: WebSocket;
  /** The TLS socket under the WebSocket, to read the peer's certificate from. */
  socket: TLSSocket;
}

/**
 * ws hands these options to tls.connect unchanged; its typings still describe an old boolean
 * checkServerIdentity, so the TLS half is typed with Node's own definition.
 */
export type DialOptions = Omit<ClientOptions, 'checkServerIdentity'> &
  ConnectionOptions & { localAddress?: string };

/** Opens a WebSocket; a refusal rejects with the peer's stated reason, not just a status code. */
export function dial(url: string, options: DialOptions): Promise<Dialled> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...options, perMessageDeflate: false } as ClientOptions);
    let socket: TLSSocket | undefined;
    let refusal: string | undefined;
    ws.once('upgrade', (response: IncomingMessage) => {
      socket = response.socket as TLSSocket;
    });
    ws.once('unexpected-response', (_request, response: IncomingMessage) => {
      refusal = String(response.headers[REFUSAL_HEADER] ?? `HTTP ${response.statusCode}`);
      ws.terminate();
    });
    const fail = (reason: string) =>
      reject(
        refusal === undefined
          ? new TransportError('unreachable', reason)
          : new TransportError('refused', `refused by peer: ${refusal}`),
      );
    ws.once('error', (error) => fail(error.message));
    ws.once('close', () => fail('connection closed during handshake'));
    ws.once('open', () => resolve({ ws, socket: socket as TLSSocket }));
  });
}

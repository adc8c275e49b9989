export type TransportErrorCode =
  /** No answer in time to a request that was sent: the peer may have acted on it. */
  | 'timeout'
  /** The connection closed: a request sent on it may have been acted on. */
  | 'closed'
  /** A request that never left this node (it waited for a connection): nothing was done. */
  | 'unsent'
  | 'unreachable'
  | 'refused'
  | 'queue_full'
  | 'too_large'
  | 'remote';

/** Every failure of a send or request, naming the peer and what went wrong. */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
  ) {
    super(message);
  }
}

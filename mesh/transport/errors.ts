export type TransportErrorCode =
  | 'timeout'
  | 'closed'
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

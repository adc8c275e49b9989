/**
 * When a request that failed at one replica may go to another: pure, so that the rules read as a
 * table (test/proxy/http/retry.test.ts).
 */

/** Methods a replica may see twice: retried when a reused connection broke before any answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Codes of a connection that broke under a request: closed or destroyed under undici, or failing
 * the request's write (the far end gone: a stream between agents reset with its session).
 */
const BROKEN = new Set(['UND_ERR_SOCKET', 'UND_ERR_DESTROYED', 'EPIPE', 'ECONNRESET']);

/** Why an exchange with a replica failed, as far as sending the request again goes. */
export type FailureCause =
  /** Refused at connect, or its pool closed as it left the table: nothing of it was read. */
  | 'not-sent'
  /** The replica's node could not reach it: as good as a failed connect, but the body was read. */
  | 'relay-refused'
  /** The connection broke before any answer (the replica died, or its pool was torn down). */
  | 'broken'
  /** No answer began within the response timeout. */
  | 'timeout'
  | 'other';

/** The cause, from undici's error code and what the ingress saw. */
export function causeOf(
  code: string | undefined,
  unreachable: boolean,
  relayRefused: boolean,
): FailureCause {
  if (unreachable || code === 'UND_ERR_CLOSED') return 'not-sent';
  if (relayRefused) return 'relay-refused';
  if (BROKEN.has(code ?? '')) return 'broken';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'timeout';
  return 'other';
}

/**
 * Whether the request may go to another replica: always when none of it was sent; after the
 * relay's refusal, or a break on a method that may be seen twice, only when its body can be sent
 * again (read whole, not streaming from the client).
 */
export function retryable(cause: FailureCause, method: string, bodyResendable: boolean): boolean {
  if (cause === 'not-sent') return true;
  if (cause === 'relay-refused') return bodyResendable;
  if (cause === 'broken') return IDEMPOTENT.has(method) && bodyResendable;
  return false;
}

import test from 'ava';
import { causeOf, type FailureCause, retryable } from '../../../proxy/http/retry.js';

test('a failed exchange is classified by what the ingress saw and undici said', (t) => {
  const rows: Array<[string | undefined, boolean, FailureCause]> = [
    [undefined, true, 'not-sent'],
    ['UND_ERR_CLOSED', false, 'not-sent'],
    ['UND_ERR_SOCKET', true, 'not-sent'],
    ['UND_ERR_SOCKET', false, 'broken'],
    ['UND_ERR_DESTROYED', false, 'broken'],
    ['EPIPE', false, 'broken'],
    ['ECONNRESET', false, 'broken'],
    ['UND_ERR_HEADERS_TIMEOUT', false, 'timeout'],
    ['UND_ERR_ABORTED', false, 'other'],
    [undefined, false, 'other'],
  ];
  for (const [code, unreachable, cause] of rows)
    t.is(causeOf(code, unreachable), cause, `${code} ${unreachable}`);
});

test('a request goes to another replica only when sending it again is safe', (t) => {
  // cause, method, body resendable → retried
  const rows: Array<[FailureCause, string, boolean, boolean]> = [
    ['not-sent', 'POST', false, true],
    ['not-sent', 'GET', true, true],
    ['broken', 'GET', true, true],
    ['broken', 'HEAD', true, true],
    ['broken', 'OPTIONS', true, true],
    ['broken', 'POST', true, false],
    ['broken', 'PUT', true, false],
    ['broken', 'GET', false, false],
    ['timeout', 'GET', true, false],
    ['other', 'GET', true, false],
  ];
  for (const [cause, method, resendable, again] of rows)
    t.is(retryable(cause, method, resendable), again, `${cause} ${method} ${resendable}`);
});

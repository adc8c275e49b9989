import test from 'ava';
import { causeOf, type FailureCause, retryable } from '../../../proxy/http/retry.js';

test('a failed exchange is classified by what the ingress saw and undici said', (t) => {
  const rows: Array<[string | undefined, boolean, boolean, FailureCause]> = [
    [undefined, true, false, 'not-sent'],
    ['UND_ERR_CLOSED', false, false, 'not-sent'],
    [undefined, false, true, 'relay-refused'],
    ['UND_ERR_SOCKET', false, false, 'broken'],
    ['UND_ERR_DESTROYED', false, false, 'broken'],
    ['EPIPE', false, false, 'broken'],
    ['ECONNRESET', false, false, 'broken'],
    ['UND_ERR_SOCKET', false, true, 'relay-refused'],
    ['UND_ERR_HEADERS_TIMEOUT', false, false, 'timeout'],
    ['UND_ERR_ABORTED', false, false, 'other'],
    [undefined, false, false, 'other'],
  ];
  for (const [code, unreachable, relayRefused, cause] of rows)
    t.is(causeOf(code, unreachable, relayRefused), cause, `${code} ${unreachable} ${relayRefused}`);
});

test('a request goes to another replica only when sending it again is safe', (t) => {
  // cause, method, body resendable → retried
  const rows: Array<[FailureCause, string, boolean, boolean]> = [
    ['not-sent', 'POST', false, true],
    ['not-sent', 'GET', true, true],
    ['relay-refused', 'POST', true, true],
    ['relay-refused', 'POST', false, false],
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

import type { IncomingMessage } from 'node:http';
import test from 'ava';
import { forwardHeaders, withoutHopByHopFields } from '../../../proxy/http/headers.js';

function request(peer: string, raw: string[]): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2)
    headers[(raw[i] as string).toLowerCase()] = raw[i + 1] as string;
  return {
    socket: { remoteAddress: peer },
    rawHeaders: raw,
    headers,
  } as unknown as IncomingMessage;
}

const pairs = (flat: string[]) =>
  Object.fromEntries(flat.flatMap((v, i) => (i % 2 ? [] : [[v.toLowerCase(), flat[i + 1]]])));

test("a client's own X-Forwarded-* are replaced by what the ingress saw", (t) => {
  const raw = [
    'Host',
    'shop.test',
    'X-Forwarded-For',
    '203.0.113.9',
    'X-Forwarded-Proto',
    'https',
    'Accept',
    '*/*',
  ];
  const out = pairs(forwardHeaders(request('::ffff:198.51.100.7', raw), 'http', () => false));
  t.like(out, {
    host: 'shop.test',
    accept: '*/*',
    'x-forwarded-for': '198.51.100.7',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'shop.test',
  });
});

test("a trusted proxy's chain is extended, its scheme and host kept", (t) => {
  const raw = [
    'Host',
    'shop.test',
    'X-Forwarded-For',
    '203.0.113.9',
    'X-Forwarded-Proto',
    'https',
    'X-Forwarded-Host',
    'shop.example',
  ];
  const out = pairs(forwardHeaders(request('10.0.0.5', raw), 'http', (ip) => ip === '10.0.0.5'));
  t.like(out, {
    'x-forwarded-for': '203.0.113.9, 10.0.0.5',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'shop.example',
  });
});

test('hop-by-hop headers, and those Connection names, are not passed on; an upgrade keeps its own', (t) => {
  const raw = [
    'Host',
    'a',
    'Connection',
    'keep-alive, X-Secret',
    'Keep-Alive',
    'timeout=5',
    'X-Secret',
    '1',
    'TE',
    'trailers',
    'Expect',
    '100-continue',
    'Upgrade',
    'websocket',
  ];
  t.deepEqual(Object.keys(pairs(forwardHeaders(request('10.0.0.5', raw), 'http', () => false))), [
    'host',
    'x-forwarded-for',
    'x-forwarded-proto',
    'x-forwarded-host',
  ]);
  const upgrade = pairs(forwardHeaders(request('10.0.0.5', raw), 'http', () => false, true));
  t.is(upgrade.upgrade, 'websocket');
  t.is(upgrade.connection, 'keep-alive, X-Secret');
  t.deepEqual(
    withoutHopByHopFields({
      'content-type': 'text/plain',
      connection: 'close',
      'transfer-encoding': 'chunked',
    }),
    {
      'content-type': 'text/plain',
    },
  );
});

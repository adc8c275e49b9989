import test from 'ava';
import fc from 'fast-check';
import { formatStreamTarget, parseStreamTarget } from '../../proxy/stream-target.js';

const taskId = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,40}$/);

test('a stream target read back is the one written, for every kind', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom('tcp' as const, 'http' as const, 'udp' as const),
      taskId,
      fc.integer({ min: 1, max: 65535 }),
      (kind, id, port) => {
        const target = { kind, taskId: id, port };
        t.deepEqual(parseStreamTarget(formatStreamTarget(target)), target);
      },
    ),
  );
});

test('the wire format: a prefix for the relay and for UDP, none for a TCP port', (t) => {
  t.is(formatStreamTarget({ kind: 'tcp', taskId: 'shop.web.1.ab', port: 80 }), 'shop.web.1.ab/80');
  t.is(
    formatStreamTarget({ kind: 'http', taskId: 'shop.web.1.ab', port: 80 }),
    'http/shop.web.1.ab/80',
  );
  t.is(
    formatStreamTarget({ kind: 'udp', taskId: 'dns.dns.1.cd', port: 53 }),
    'udp/dns.dns.1.cd/53',
  );
});

test('a target that names no task port is refused', (t) => {
  for (const bad of [
    '',
    'shop.web.1.ab',
    'shop.web.1.ab/',
    '/80',
    'a/b/80',
    'x/0',
    'x/65536',
    'x/8o',
    'udp/80',
  ])
    t.is(parseStreamTarget(bad), undefined, bad);
});

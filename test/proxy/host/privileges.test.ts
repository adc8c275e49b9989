import test from 'ava';
import { missingCapabilities } from '../../../proxy/host/privileges.js';

test('root (every capability) misses nothing', (t) => {
  t.deepEqual(missingCapabilities('Name:\tnode\nCapEff:\t000001ffffffffff\n'), []);
});

test('an unprivileged process misses both, named', (t) => {
  t.deepEqual(missingCapabilities('CapEff:\t0000000000000000\n'), [
    'CAP_NET_ADMIN',
    'CAP_NET_BIND_SERVICE',
  ]);
});

test('only CAP_NET_BIND_SERVICE granted: CAP_NET_ADMIN is missing', (t) => {
  t.deepEqual(missingCapabilities('CapEff:\t0000000000000400\n'), ['CAP_NET_ADMIN']);
});

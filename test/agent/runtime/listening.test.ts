import test from 'ava';
import { listeningPorts } from '../../../agent/runtime/listening.js';

const HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const row = (local: string, state: string) =>
  `   0: ${local} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000     0        0 1 1`;

test('listening sockets on any address or the container address count; loopback ones do not', (t) => {
  const tcp = [
    HEADER,
    row('00000000:1538', '0A'), // 0.0.0.0:5432
    row('0100007F:18EB', '0A'), // 127.0.0.1:6379: loopback only
    row('0300FE0A:1F90', '0A'), // 10.254.0.3:8080
    row('0300FE0A:D431', '01'), // an established connection, not a listener
  ].join('\n');
  const tcp6 = [
    HEADER,
    row('00000000000000000000000000000000:0050', '0A'), // [::]:80
    row('00000000000000000000000001000000:2382', '0A'), // [::1]:9090: loopback only
    row('0000000000000000FFFF00000100007F:0016', '0A'), // ::ffff:127.0.0.1:22
    row('00000000000000000000000000000000:1538', '0A'), // [::]:5432 again: once
  ].join('\n');
  t.deepEqual(listeningPorts(tcp, tcp6), [80, 5432, 8080]);
});

test('an empty table (no IPv6, nothing listening) gives no port', (t) => {
  t.deepEqual(listeningPorts('', HEADER), []);
});

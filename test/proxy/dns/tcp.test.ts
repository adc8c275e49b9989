/**
 * DNS over TCP against a client that sends without reading: real sockets on this file's loopback
 * block (127.0.62.0/24).
 */
import { connect } from 'node:net';
import test from 'ava';
import { UpstreamResolvers } from '../../../proxy/dns/forward.js';
import { DnsServer } from '../../../proxy/dns/server.js';
import { encodeName, TYPE } from '../../../proxy/dns/wire.js';
import { buildZone } from '../../../proxy/dns/zone.js';
import { routingTable } from '../../../proxy/routing-table.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';
import { serviceRecord } from '../../helpers/records.js';

const HOST = '127.0.62.1';
const PORT = 45353;
const zone = buildZone(
  routingTable({
    settings: { serviceRange: '10.77.0.0/24', bridgeRange: '10.78.0.0/16' },
    services: [serviceRecord({ name: 'web', expose: [80] })],
    addresses: new Map([['s.web', { address: '10.77.0.2' }]]),
    tasks: [],
    statuses: new Map(),
    alive: new Set(),
  }),
  1,
);

/** `web.s.mesh A` behind its two-byte length, as a TCP client sends it. */
function framedQuery(id: number): Buffer {
  const message = Buffer.concat([
    Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    encodeName('web.s.mesh'),
    Buffer.from([0, TYPE.A, 0, 1]),
  ]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

test('a TCP client that sends without reading is held back, and served once it reads', async (t) => {
  let looked = 0;
  const logs = captureLogs('dns-tcp');
  const server = new DnsServer({
    zone: () => {
      looked += 1;
      return zone;
    },
    allowed: () => true,
    recheck: async () => true,
    upstreams: new UpstreamResolvers([], logs.log),
    maxConnections: 64,
    log: logs.log,
  });
  await server.listen(HOST, PORT);
  t.teardown(() => server.close());

  const client = connect(PORT, HOST);
  await new Promise((resolve) => client.once('connect', resolve));
  client.pause();
  const QUERIES = 400_000; // about 12 MB of queries
  const batch = Buffer.concat(Array.from({ length: 1000 }, (_, i) => framedQuery(i)));
  for (let n = 0; n < QUERIES / 1000; n++) client.write(batch);
  // Nothing is read: the server answers only what its socket can hold, then stops reading.
  await eventually(
    async () => {
      const seen = looked;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return looked === seen;
    },
    { what: 'the server held back', timeoutMs: 10_000 },
  );
  t.true(
    looked < QUERIES / 2,
    `${looked} of ${QUERIES} queries answered while the client read nothing`,
  );
  // Once the client reads, every query is answered.
  let received = 0;
  client.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  client.resume();
  // Every answer is the same size (the first one tells): all of them arrive.
  const size = await new Promise<number>((resolve) =>
    client.once('data', (chunk: Buffer) => resolve(chunk.readUInt16BE(0) + 2)),
  );
  await eventually(() => received === QUERIES * size, {
    what: 'every query answered',
    timeoutMs: 60_000,
  });
  t.is(looked, QUERIES);
  client.destroy();
  const started = Date.now();
  await eventually(async () => (await server.tcpClients()) === 0, {
    what: 'the server closed its side',
    timeoutMs: 15_000,
  });
  t.log(`closed ${Date.now() - started} ms after the client went`);
});

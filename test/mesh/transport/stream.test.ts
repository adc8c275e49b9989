import test from 'ava';
import type { TransportError } from '../../../mesh/transport/errors.js';
import { refuseUpgrade } from '../../../mesh/transport/listener.js';
import { acceptStream } from '../../../mesh/transport/stream.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';

// This file's loopback block: 127.0.32.0/24.
const cluster = await testCluster();

async function pair(a: string, b: string) {
  const [ia, ib] = await Promise.all([cluster.identity(), cluster.identity()]);
  const alice = await startTransport(ia, a, captureLogs('alice').log);
  const bob = await startTransport(ib, b, captureLogs('bob').log);
  return { alice, bob, ia, ib };
}

test('a stream reaches what the peer serves, named by its certificate, both ways and half-closed', async (t) => {
  const { alice, bob, ia, ib } = await pair('127.0.32.1', '127.0.32.2');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.serveStreams((peer, target, socket, head) => {
    t.is(peer.nodeId, ia.nodeId);
    const stream = acceptStream(socket, head);
    let received = '';
    stream.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    // Answers only once the other side finished sending: the half-close came through.
    stream.on('end', () => stream.end(`${target} got ${received}`));
  });
  const stream = await alice.openStream({ address: bob.address, nodeId: ib.nodeId }, 'echo/7');
  stream.end('hello');
  let answer = '';
  for await (const chunk of stream) answer += String(chunk);
  t.is(answer, 'echo/7 got hello');
});

test("a refused stream rejects with the peer's reason; a node without a handler refuses all", async (t) => {
  const { alice, bob, ib } = await pair('127.0.32.3', '127.0.32.4');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const to = { address: bob.address, nodeId: ib.nodeId };
  const none = await t.throwsAsync<TransportError>(alice.openStream(to, 'x/1'));
  t.is(none?.code, 'refused');
  t.regex(none?.message ?? '', /this node serves no such stream/);
  bob.serveStreams((_peer, target, socket) => refuseUpgrade(socket, 404, `no task ${target}`));
  const refused = await t.throwsAsync<TransportError>(alice.openStream(to, 'gone/80'));
  t.regex(refused?.message ?? '', /refused by peer: no task gone\/80/);
});

test('a stream to an address where another node answers is refused by its certificate', async (t) => {
  const { alice, bob } = await pair('127.0.32.5', '127.0.32.6');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.serveStreams((_peer, _target, socket, head) => acceptStream(socket, head).end());
  const error = await t.throwsAsync<TransportError>(
    alice.openStream({ address: bob.address, nodeId: 'n-somebody-else' }, 'x/1'),
  );
  t.is(error?.code, 'unreachable');
  t.regex(error?.message ?? '', /expected node n-somebody-else/);
});

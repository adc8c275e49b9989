import { connect, createServer } from 'node:net';
import test from 'ava';
import type { TransportError } from '../../../mesh/transport/errors.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.10.0/24.
const cluster = await testCluster();

async function pair(a: string, b: string, options = {}) {
  const [ia, ib] = await Promise.all([cluster.identity(), cluster.identity()]);
  const alice = await startTransport(ia, a, captureLogs('alice').log, options);
  const bob = await startTransport(ib, b, captureLogs('bob').log, options);
  return { alice, bob, ia, ib };
}

/** A port that is free now, so a test can restart a node on the same address. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test('requests are answered and the sender is named by its certificate', async (t) => {
  const { alice, bob, ia } = await pair('127.0.10.1', '127.0.10.2');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.handle('add', (body, from) => {
    const { a, b } = body as { a: number; b: number };
    return { sum: a + b, from: from.nodeId };
  });
  t.deepEqual(await alice.request(bob.address, 'add', { a: 2, b: 3 }), { sum: 5, from: ia.nodeId });
});

test('one-way messages arrive in order, both directions over their own links', async (t) => {
  const { alice, bob, ia, ib } = await pair('127.0.10.3', '127.0.10.4');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const atBob: number[] = [];
  const atAlice: string[] = [];
  let bothDone: () => void;
  const done = new Promise<void>((resolve) => {
    bothDone = resolve;
  });
  const check = () => atBob.length === 100 && atAlice.length === 1 && bothDone();
  bob.handle('count', (n, from) => {
    t.is(from.nodeId, ia.nodeId);
    atBob.push(n as number);
    if (atBob.length === 100) bob.send(alice.address, 'done', 'ok');
    check();
  });
  alice.handle('done', (body, from) => {
    t.is(from.nodeId, ib.nodeId);
    atAlice.push(body as string);
    check();
  });
  for (let n = 0; n < 100; n++) alice.send(bob.address, 'count', n);
  await done;
  t.deepEqual(atBob, [...Array(100).keys()]);
});

test('a failing handler, an unknown type and a slow handler each fail only their request', async (t) => {
  const { alice, bob } = await pair('127.0.10.5', '127.0.10.6');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.handle('fail', () => {
    throw new Error('disk on fire');
  });
  bob.handle('never', () => new Promise(() => {}));
  bob.handle('ok', () => 'fine');

  const failed = await t.throwsAsync<TransportError>(alice.request(bob.address, 'fail', null));
  t.is(failed?.code, 'remote');
  t.is(failed?.message, 'disk on fire');
  const unknown = await t.throwsAsync<TransportError>(alice.request(bob.address, 'nope', null));
  t.regex(unknown?.message ?? '', /no handler for request type "nope"/);
  const slow = await t.throwsAsync<TransportError>(
    alice.request(bob.address, 'never', null, { timeoutMs: 200 }),
  );
  t.is(slow?.code, 'timeout');
  t.is(await alice.request(bob.address, 'ok', null), 'fine');
});

test('a message larger than a frame arrives whole, in parts; one over the message limit is refused by the sender and the link stays up', async (t) => {
  const { alice, bob } = await pair('127.0.10.7', '127.0.10.8', {
    maxFrameBytes: 1024,
    maxMessageBytes: 16 * 1024,
  });
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.handle('echo', (body) => body);
  t.is(await alice.request(bob.address, 'echo', 'warm'), 'warm');
  // Ten frames' worth each way (the answer is as large), with small messages around it in order.
  const large = 'x'.repeat(10_000);
  const answers = await Promise.all([
    alice.request(bob.address, 'echo', 'before'),
    alice.request(bob.address, 'echo', large),
    alice.request(bob.address, 'echo', 'after'),
  ]);
  t.deepEqual(answers, ['before', large, 'after']);
  const error = await t.throwsAsync<TransportError>(
    alice.request(bob.address, 'echo', 'x'.repeat(20_000)),
  );
  t.is(error?.code, 'too_large');
  t.regex(error?.message ?? '', /exceeds the 16384-byte limit/);
  t.is(await alice.request(bob.address, 'echo', 'still'), 'still');
});

test('a node at the address with another node ID is refused', async (t) => {
  const { alice, bob, ib } = await pair('127.0.10.9', '127.0.10.10');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.handle('echo', (body) => body);
  t.is(await alice.request({ address: bob.address, nodeId: ib.nodeId }, 'echo', 1), 1);
  const error = await t.throwsAsync<TransportError>(
    alice.request({ address: bob.address, nodeId: 'nimpostor' }, 'echo', 1),
  );
  t.regex(error?.message ?? '', /expected node nimpostor, found node/);
});

test('the send queue to an unreachable peer is bounded', async (t) => {
  const alice = await startTransport(
    await cluster.identity(),
    '127.0.10.11',
    captureLogs('a').log,
    {
      maxQueue: 3,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    },
  );
  t.teardown(() => alice.close());
  const nowhere = `127.0.10.12:${await freePort('127.0.10.12')}`;
  for (let n = 0; n < 3; n++) alice.send(nowhere, 'note', n);
  const error = t.throws<TransportError>(() => alice.send(nowhere, 'note', 3));
  t.is(error?.code, 'queue_full');
  const request = await t.throwsAsync<TransportError>(alice.request(nowhere, 'note', null));
  t.is(request?.code, 'queue_full');
});

test('queued messages are delivered after the peer comes back, and requests work again', async (t) => {
  const ib = await cluster.identity();
  const host = '127.0.10.14';
  const port = await freePort(host);
  const aliceLogs = captureLogs('alice');
  const alice = await startTransport(await cluster.identity(), '127.0.10.13', aliceLogs.log, {
    backoff: { initialMs: 50, maxMs: 400 },
  });
  t.teardown(() => alice.close());
  const address = `${host}:${port}`;

  alice.send(address, 'note', 'sent while down');
  await aliceLogs.waitFor((line) => line.msg === 'dial failed' && line.address === address);

  const received: unknown[] = [];
  const bobLog = captureLogs('bob').log;
  let bob = await startTransport(ib, host, bobLog, { port });
  bob.handle('note', (body) => {
    received.push(body);
  });
  bob.handle('echo', (body) => body);
  await eventually(() => received.length === 1, {
    what: 'queued message delivered',
    timeoutMs: 10_000,
  });
  t.deepEqual(received, ['sent while down']);

  // Restart the peer: the old connection drops and the next request redials.
  await bob.close();
  await aliceLogs.waitFor((line) => line.msg === 'link closed' && line.address === address);
  bob = await startTransport(ib, host, bobLog, { port });
  bob.handle('echo', (body) => body);
  t.teardown(() => bob.close());
  t.is(await alice.request(address, 'echo', 'again'), 'again');
});

/** A TCP relay to target that can be frozen: it then drops every byte, as a cut link does. */
async function relay(host: string, target: string) {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  let frozen = false;
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(targetPort), targetHost);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (data) => frozen || to.write(data));
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    address: `${host}:${(server.address() as { port: number }).port}`,
    freeze: (value: boolean) => {
      frozen = value;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a connection that goes silent is closed after the silence, and redialled once it heals', async (t) => {
  const options = {
    liveness: { heartbeatMs: 100, silenceMs: 600 },
    backoff: { initialMs: 50, maxMs: 200 },
  };
  const bob = await startTransport(await cluster.identity(), '127.0.10.15', captureLogs('bob').log);
  bob.handle('echo', (body) => body);
  const link = await relay('127.0.10.16', bob.address);
  const aliceLogs = captureLogs('alice');
  const alice = await startTransport(
    await cluster.identity(),
    '127.0.10.17',
    aliceLogs.log,
    options,
  );
  t.teardown(async () => {
    await alice.close();
    await link.close();
    await bob.close();
  });
  t.is(await alice.request(link.address, 'echo', 'before'), 'before');

  link.freeze(true); // TCP stays up on both sides; nothing gets through
  const cut = await t.throwsAsync<TransportError>(
    alice.request(link.address, 'echo', 'during', { timeoutMs: 30_000 }),
  );
  t.is(cut?.code, 'closed', 'failed by the silence, long before its own timeout');
  t.regex(cut?.message ?? '', /nothing heard for \d+ ms/);
  await aliceLogs.waitFor((line) => line.msg === 'connection dead, closing');

  link.freeze(false);
  t.is(
    await eventually(() => alice.request(link.address, 'echo', 'after').catch(() => undefined), {
      what: 'the link redialled',
      timeoutMs: 10_000,
    }),
    'after',
  );
});

/**
 * Forwarding upstream as RFC 5452 asks: real UDP sockets on this file's loopback block
 * (127.0.56.0/24), an upstream the test runs, and an off-path sender that forges answers.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import test from 'ava';
import { UpstreamResolvers } from '../../../proxy/dns/forward.js';
import { SET_ASIDE_MS, UpstreamHealth } from '../../../proxy/dns/upstream-health.js';
import { encodeName, parseQuery, type Question } from '../../../proxy/dns/wire.js';
import { captureLogs } from '../../helpers/logs.js';

const UPSTREAM = '127.0.56.1';
const FORGER = '127.0.56.2';
const SILENT = '127.0.56.3';

/** A query for `name` A IN, with the client's ID 0x1234. */
function query(name: string): { bytes: Buffer; question: Question } {
  const bytes = Buffer.concat([
    Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    encodeName(name),
    Buffer.from([0, 1, 0, 1]),
  ]);
  const parsed = parseQuery(bytes);
  if (!parsed || !('question' in parsed)) throw new Error('test query does not parse');
  return { bytes, question: parsed.question };
}

/** The answer to `asked` (its ID, its question or another's), with one A record 192.0.2.<last>. */
function answer(asked: Buffer, last: number, question = asked.subarray(12)): Buffer {
  const header = Buffer.from(asked.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2); // response, recursion desired and available
  header.writeUInt16BE(1, 6);
  const record = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, last]);
  return Buffer.concat([header, question, record]);
}

interface Upstream {
  socket: Socket;
  port: number;
  /** Each query as it arrived, with where it came from. */
  asked: Array<{ query: Buffer; from: RemoteInfo }>;
  next: () => Promise<{ query: Buffer; from: RemoteInfo }>;
}

async function udpServer(host: string): Promise<Upstream> {
  const socket = createSocket('udp4');
  const asked: Upstream['asked'] = [];
  const waiting: Array<(q: { query: Buffer; from: RemoteInfo }) => void> = [];
  socket.on('message', (query, from) => {
    const waiter = waiting.shift();
    if (waiter) waiter({ query, from });
    else asked.push({ query, from });
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return {
    socket,
    port: socket.address().port,
    asked,
    next: () =>
      new Promise((resolve) => {
        const ready = asked.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
  };
}

const send = (socket: Socket, bytes: Buffer, to: RemoteInfo) =>
  new Promise<void>((resolve, reject) =>
    socket.send(bytes, to.port, to.address, (error) => (error ? reject(error) : resolve())),
  );

test('forged answers are ignored: from another address or port, another question, another ID', async (t) => {
  const upstream = await udpServer(UPSTREAM);
  const forger = await udpServer(FORGER);
  const otherPort = await udpServer(UPSTREAM);
  t.teardown(() => {
    for (const server of [upstream, forger, otherPort]) server.socket.close();
  });
  const logs = captureLogs('forward');
  const resolvers = new UpstreamResolvers([`${UPSTREAM}:${upstream.port}`], logs.log, 3000);
  t.teardown(() => resolvers.close());

  const { bytes, question } = query('registry.example.org');
  const resolving = resolvers.resolve(bytes, question);
  const { query: sent, from } = await upstream.next();
  // The off-path sender knows the port and even the ID: it still comes from elsewhere.
  await send(forger.socket, answer(sent, 66), from);
  await send(otherPort.socket, answer(sent, 67), from);
  // From the upstream itself: the wrong question, then the wrong ID.
  const other = query('evil.example.org').bytes;
  await send(upstream.socket, answer(sent, 68, other.subarray(12)), from);
  const wrongId = answer(sent, 69);
  wrongId.writeUInt16BE((sent.readUInt16BE(0) + 1) & 0xffff, 0);
  await send(upstream.socket, wrongId, from);
  await logs.waitFor((l) => String(l.msg).startsWith('DNS answer ignored'));
  await send(upstream.socket, answer(sent, 7), from);

  const got = await resolving;
  t.truthy(got, 'the real answer is taken');
  t.is(got?.readUInt16BE(0), 0x1234, "the client's own ID is put back");
  t.is(got?.at(-1), 7, 'the address is the real one');
});

test('each query leaves from a port of its own, under an ID no one can count on', async (t) => {
  const upstream = await udpServer(UPSTREAM);
  t.teardown(() => upstream.socket.close());
  const resolvers = new UpstreamResolvers(
    [`${UPSTREAM}:${upstream.port}`],
    captureLogs('ports').log,
  );
  t.teardown(() => resolvers.close());
  const ports = new Set<number>();
  const ids = new Set<number>();
  for (let n = 0; n < 8; n++) {
    const { bytes, question } = query(`host${n}.example.org`);
    const resolving = resolvers.resolve(bytes, question);
    const { query: sent, from } = await upstream.next();
    ports.add(from.port);
    ids.add(sent.readUInt16BE(0));
    await send(upstream.socket, answer(sent, n), from);
    t.is((await resolving)?.at(-1), n);
  }
  t.is(ports.size, 8, 'eight queries, eight source ports');
  t.true(ids.size >= 7, `IDs are random, not counted up (${[...ids].join(', ')})`);
});

test('an upstream that does not answer is left for the next within the deadline, then tried last', async (t) => {
  const silent = await udpServer(SILENT);
  const upstream = await udpServer(UPSTREAM);
  t.teardown(() => {
    for (const server of [silent, upstream]) server.socket.close();
  });
  upstream.socket.on('message', (sent, from) => void send(upstream.socket, answer(sent, 9), from));
  const resolvers = new UpstreamResolvers(
    [`${SILENT}:${silent.port}`, `${UPSTREAM}:${upstream.port}`],
    captureLogs('failover').log,
    1000,
  );
  t.teardown(() => resolvers.close());
  const first = query('a.example.org');
  t.is((await resolvers.resolve(first.bytes, first.question))?.at(-1), 9, 'answered by the second');
  t.is(silent.asked.length, 1, 'the silent one was asked first');
  for (let n = 0; n < 3; n++) {
    const next = query(`b${n}.example.org`);
    t.is((await resolvers.resolve(next.bytes, next.question))?.at(-1), 9);
  }
  t.is(silent.asked.length, 1, 'while set aside, the silent one is not asked first again');
});

test('upstream order: in turn; one that failed goes last until it answers or its time is over', (t) => {
  const health = new UpstreamHealth(['a', 'b', 'c']);
  const firsts = [health.order(0)[0], health.order(0)[0], health.order(0)[0]];
  t.deepEqual(firsts, ['a', 'b', 'c'], 'each in turn first');
  health.failed('a', 0);
  t.deepEqual(health.order(1), ['b', 'c', 'a'], 'its turn, but set aside');
  t.deepEqual(health.order(1), ['b', 'c', 'a']);
  t.deepEqual(health.order(SET_ASIDE_MS), ['c', 'a', 'b'], 'back in turn after its time aside');
  health.failed('b', SET_ASIDE_MS);
  health.answered('b');
  t.deepEqual(health.order(SET_ASIDE_MS), ['a', 'b', 'c'], 'an answer brings it back at once');
  for (const u of ['a', 'b', 'c']) health.failed(u, SET_ASIDE_MS);
  t.deepEqual(health.order(SET_ASIDE_MS + 1), ['b', 'c', 'a'], 'all failed: all still tried');
});

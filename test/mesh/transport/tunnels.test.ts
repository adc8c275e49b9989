import { once } from 'node:events';
import {
  type ClientHttp2Stream,
  connect as connectH2,
  constants,
  createServer as createH2Server,
  type ServerHttp2Stream,
} from 'node:http2';
import {
  type AddressInfo,
  createConnection,
  createServer as createNetServer,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, connect } from 'node:tls';
import test, { type ExecutionContext } from 'ava';
import { normalizeSerial } from '../../../mesh/pki/certificate.js';
import type { TransportError } from '../../../mesh/transport/errors.js';
import type { Transport, TransportOptions } from '../../../mesh/transport/transport.js';
import type { IncomingStream } from '../../../mesh/transport/tunnel-server.js';
import { keepAlive, TUNNEL_ALPN } from '../../../mesh/transport/tunnels.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.32.0/24.
const cluster = await testCluster();

/**
 * How long alice waits for her session to bob: no test here is about that limit, and CI, running
 * the whole suite at once, once took longer than the transport's 3 s for the first handshake.
 */
const SESSION_WITHIN_MS = 20_000;

async function pair(a: string, b: string, bobOptions: Partial<TransportOptions> = {}) {
  const [ia, ib] = await Promise.all([cluster.identity(), cluster.identity()]);
  const alice = await startTransport(ia, a, captureLogs('alice').log, {
    connectTimeoutMs: SESSION_WITHIN_MS,
  });
  const bobLogs = captureLogs('bob');
  const bob = await startTransport(ib, b, bobLogs.log, bobOptions);
  const to = { address: bob.address, nodeId: ib.nodeId };
  return { alice, bob, ia, ib, to, bobLogs };
}

/**
 * Bob echoes each chunk back, and ends once the asker has; the streams he took are kept. A stream
 * whose target `answers` refuses is left unanswered.
 */
function echo(bob: Transport, answers: (target: string) => boolean = () => true): IncomingStream[] {
  const taken: IncomingStream[] = [];
  bob.serveStreams((incoming) => {
    if (!answers(incoming.target)) return;
    taken.push(incoming);
    const stream = incoming.accept();
    stream.on('data', (chunk: Buffer) => stream.write(chunk));
    stream.on('end', () => stream.end());
    stream.on('error', () => undefined);
  });
  return taken;
}

/** Sends a word and waits for it to come back. */
async function roundTrip(stream: Duplex, word: string): Promise<string> {
  const answer = once(stream, 'data');
  stream.write(word);
  return String((await answer)[0]);
}

function closedBy(stream: Duplex): Promise<number | undefined> {
  return new Promise((resolve) =>
    stream.once('close', () => resolve((stream as ClientHttp2Stream).rstCode)),
  );
}

test('a stream reaches what the peer serves, named by its certificate and the state index it was chosen from, both ways and half-closed', async (t) => {
  const { alice, bob, ia, to } = await pair('127.0.32.1', '127.0.32.2');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  bob.serveStreams(({ peer, target, asOf, accept }) => {
    t.is(peer.nodeId, ia.nodeId);
    const stream = accept();
    let received = '';
    stream.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    // Answers only once the other side finished sending: the half-close came through.
    stream.on('end', () => stream.end(`${target} as of ${asOf} got ${received}`));
  });
  const stream = await alice.openStream(to, 'echo/7', 42);
  stream.end('hello');
  let answer = '';
  for await (const chunk of stream) answer += String(chunk);
  t.is(answer, 'echo/7 as of 42 got hello');
  t.is(await closedBy(stream).then(() => stream.rstCode), constants.NGHTTP2_NO_ERROR);
});

test('streams to one peer share one session: one connection, not a handshake each', async (t) => {
  const { alice, bob, to } = await pair('127.0.32.3', '127.0.32.4');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const taken = echo(bob);
  const streams = await Promise.all(
    Array.from({ length: 20 }, () => alice.openStream(to, 'echo/1')),
  );
  const answers = await Promise.all(streams.map((s, i) => roundTrip(s, `w${i}`)));
  t.deepEqual(
    answers,
    streams.map((_s, i) => `w${i}`),
  );
  t.is(new Set(taken.map((s) => s.peer.remote)).size, 1);
  for (const s of streams) s.end();
});

test("a refused stream rejects with the peer's reason; a node without a handler refuses all", async (t) => {
  const { alice, bob, to } = await pair('127.0.32.5', '127.0.32.6');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const none = await t.throwsAsync<TransportError>(alice.openStream(to, 'x/1'));
  t.is(none?.code, 'refused');
  t.regex(none?.message ?? '', /this node serves no such stream/);
  bob.serveStreams(({ target, refuse }) => refuse(404, `no task ${target}`));
  const refused = await t.throwsAsync<TransportError>(alice.openStream(to, 'gone/80'));
  t.regex(refused?.message ?? '', /refused by peer: no task gone\/80/);
});

test('a stream to an address where another node answers is refused by its certificate', async (t) => {
  const { alice, bob } = await pair('127.0.32.7', '127.0.32.8');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  echo(bob);
  const error = await t.throwsAsync<TransportError>(
    alice.openStream({ address: bob.address, nodeId: 'n-somebody-else' }, 'x/1'),
  );
  t.is(error?.code, 'unreachable');
  t.regex(error?.message ?? '', /expected node n-somebody-else/);
});

test('a reset is carried as a reset, both ways, and the session goes on', async (t) => {
  const { alice, bob, to } = await pair('127.0.32.9', '127.0.32.10');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const taken: Duplex[] = [];
  bob.serveStreams(({ accept }) => {
    const stream = accept();
    stream.on('error', () => undefined);
    taken.push(stream);
  });
  const first = await alice.openStream(to, 'x/1');
  const farFirst = closedBy(taken[0] as Duplex);
  first.close(constants.NGHTTP2_CANCEL);
  t.is(await farFirst, constants.NGHTTP2_CANCEL);
  const second = await alice.openStream(to, 'x/1');
  second.on('error', () => undefined);
  const nearSecond = closedBy(second);
  (taken[1] as ServerHttp2Stream).close(constants.NGHTTP2_CANCEL);
  t.is(await nearSecond, constants.NGHTTP2_CANCEL);
  // Resets are a stream's own: the next stream goes over the same session.
  const third = await alice.openStream(to, 'x/1');
  t.truthy(third);
  third.close();
});

test('a session killed mid-transfer fails its streams at once; the next stream gets a new one', async (t) => {
  const { alice, bob, to } = await pair('127.0.32.11', '127.0.32.12');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const taken = echo(bob);
  const stream = await alice.openStream(to, 'echo/1');
  stream.on('error', () => undefined);
  t.is(await roundTrip(stream, 'before'), 'before');
  const closed = closedBy(stream);
  stream.write(Buffer.alloc(256 * 1024));
  const far = taken[0]?.accept() as ServerHttp2Stream;
  far.session?.destroy();
  await closed;
  t.false(stream.readableEnded && stream.rstCode === constants.NGHTTP2_NO_ERROR);
  const next = await alice.openStream(to, 'echo/1');
  t.is(await roundTrip(next, 'after'), 'after');
  t.not(taken[1]?.peer.remote, taken[0]?.peer.remote);
  next.end();
});

test('a peer gone before it answers a stream fails that stream at once, saying so', async (t) => {
  const { alice, bob, to } = await pair('127.0.32.20', '127.0.32.21');
  t.teardown(() => alice.close());
  // Bob goes while a stream waits for his answer, as a killed agent does: the kernel closes the
  // session's connection and the stream ends with no error of its own.
  bob.serveStreams(() => void bob.close());
  const failed = await t.throwsAsync<TransportError>(alice.openStream(to, 'echo/1'));
  t.regex(String(failed?.message), /closed before the stream was answered/);
  t.notRegex(String(failed?.message), /within \d+ ms/, 'not held until the connect timeout');
});

test('a stream the peer leaves unanswered fails after the connect timeout, naming it; the session serves the next', async (t) => {
  const [ia, ib] = await Promise.all([cluster.identity(), cluster.identity()]);
  const limitMs = 1500;
  const alice = await startTransport(ia, '127.0.32.22', captureLogs('alice').log, {
    connectTimeoutMs: limitMs,
  });
  const bob = await startTransport(ib, '127.0.32.23', captureLogs('bob').log);
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const to = { address: bob.address, nodeId: ib.nodeId };
  // Bob answers echo/* and nothing else: as a node still connecting to a task that hangs.
  echo(bob, (target) => target.startsWith('echo/'));
  // The session first (its handshake may itself take longer than the limit on a loaded machine).
  const first = await eventually(
    () =>
      alice.openStream(to, 'echo/1').then(
        (stream) => stream,
        () => undefined,
      ),
    { what: 'a session from alice to bob', timeoutMs: 20_000 },
  );
  first.end();
  const unanswered = await t.throwsAsync<TransportError>(alice.openStream(to, 'hang/1'));
  t.regex(String(unanswered?.message), new RegExp(`no stream from .* within ${limitMs} ms`));
  const next = await alice.openStream(to, 'echo/2');
  t.is(await roundTrip(next, 'after'), 'after');
  next.end();
});

test('a renewed certificate: streams in flight go on, new ones go over a session made with it', async (t) => {
  const { alice, bob, ia, to } = await pair('127.0.32.13', '127.0.32.14');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const taken = echo(bob);
  const old = await alice.openStream(to, 'echo/1');
  t.is(await roundTrip(old, 'a'), 'a');
  const renewed = await cluster.identity({ nodeId: ia.nodeId });
  alice.renewIdentity(renewed);
  t.is(await roundTrip(old, 'b'), 'b');
  const fresh = await alice.openStream(to, 'echo/1');
  t.is(await roundTrip(fresh, 'c'), 'c');
  t.is(taken[0]?.peer.serial, normalizeSerial(ia.serial));
  t.not(taken[1]?.peer.serial, taken[0]?.peer.serial);
  t.is(await roundTrip(old, 'd'), 'd');
  const oldClosed = closedBy(old);
  old.end();
  for await (const _ of old);
  t.is(await oldClosed, constants.NGHTTP2_NO_ERROR);
  fresh.end();
});

/** Bob honours alice's certificate only while `honoured` says so. */
async function withAdmission(t: ExecutionContext, a: string, b: string) {
  const state = { honoured: true };
  const p = await pair(a, b, {
    admission: ({ nodeId }) =>
      state.honoured || nodeId === p.ib.nodeId ? undefined : `node ${nodeId} was removed`,
    refusalLogsPerMinute: 100,
  });
  t.teardown(() => Promise.all([p.alice.close(), p.bob.close()]));
  return { ...p, state };
}

test('a member not honoured is refused a session, saying why; one removed loses its live one', async (t) => {
  const { alice, bob, ia, to, state, bobLogs } = await withAdmission(
    t,
    '127.0.32.15',
    '127.0.32.16',
  );
  echo(bob);
  const live = await alice.openStream(to, 'echo/1');
  live.on('error', () => undefined);
  t.is(await roundTrip(live, 'x'), 'x');
  state.honoured = false;
  const closed = closedBy(live);
  bob.recheck();
  await closed;
  await bobLogs.waitFor((l) => /dropping its tunnel session/.test(l.msg));
  const refused = await t.throwsAsync<TransportError>(alice.openStream(to, 'echo/1'));
  t.regex(refused?.message ?? '', new RegExp(`refused by peer: node ${ia.nodeId} was removed`));
  const logged = await bobLogs.waitFor((l) => l.msg === 'tunnel session refused');
  t.regex(String(logged.reason), /was removed/);
});

test('a member speaking broken HTTP/2 loses its connection; other sessions go on', async (t) => {
  const { alice, bob, to, bobLogs } = await pair('127.0.32.17', '127.0.32.18');
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  echo(bob);
  const live = await alice.openStream(to, 'echo/1');
  const mallory = await cluster.identity();
  const [host, port] = bob.address.split(':');
  const socket = connect({
    host,
    port: Number(port),
    key: mallory.keyPem,
    cert: mallory.certPem,
    ca: mallory.caCertPem,
    ALPNProtocols: [TUNNEL_ALPN],
    checkServerIdentity: () => undefined,
    localAddress: '127.0.32.19',
  } as ConnectionOptions);
  await once(socket, 'secureConnect');
  socket.on('error', () => undefined);
  socket.resume();
  socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nthis is not a frame at all, not even close\r\n');
  await once(socket, 'close');
  await bobLogs.waitFor((l) => l.msg === 'tunnel session failed');
  t.is(await roundTrip(live, 'still'), 'still');
  live.end();
});

test('a peer that stops answering pings (frozen, or its link cut) loses the session and its connection; the agent goes on', async (t) => {
  // A session through a link of this test's: once the link is cut, nothing comes back.
  const server = createH2Server();
  server.listen(0, '127.0.32.31');
  await once(server, 'listening');
  const links: Socket[] = [];
  const link = createNetServer((inner) => {
    const outer = createConnection((server.address() as AddressInfo).port, '127.0.32.31');
    links.push(inner, outer);
    inner.pipe(outer).pipe(inner);
  });
  link.listen(0, '127.0.32.30');
  await once(link, 'listening');
  t.teardown(() => {
    for (const socket of links) socket.destroy();
    link.close();
    server.close();
  });
  const near = createConnection((link.address() as AddressInfo).port, '127.0.32.30');
  const session = connectH2('http://127.0.32.30', { createConnection: () => near });
  session.on('error', () => undefined);
  await once(session, 'connect');
  const logs = captureLogs('alice');
  keepAlive(session, near, 'bob', logs.log, 200);
  const [inner, outer] = links as [Socket, Socket];
  outer.unpipe(inner);
  inner.unpipe(outer);
  inner.pause();

  await logs.waitFor(
    (line) => /no answer to a ping in 200 ms/.test(line.msg) && line.peer === 'bob',
  );
  await eventually(() => session.destroyed && near.destroyed);
  t.pass();
});

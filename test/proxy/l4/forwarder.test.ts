import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout } from 'node:timers/promises';
import test from 'ava';
import { Forwarder } from '../../../proxy/l4/forwarder.js';
import { splice } from '../../../proxy/l4/splice.js';
import type { Endpoint, ServiceRoute } from '../../../proxy/routing-table.js';
import { captureLogs } from '../../helpers/logs.js';

// This file's loopback block: 127.0.33.0/24. Endpoints are plain servers on it.

function listen(host: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

function endpoint(taskId: string, server: Server | { port: number }, nodeId = 'n1'): Endpoint {
  const port = 'address' in server ? (server.address() as { port: number }).port : server.port;
  return { taskId, nodeId, host: '127.0.33.1', ports: new Map([[80, port]]), udpPorts: new Map() };
}

function route(endpoints: Endpoint[]): ServiceRoute {
  return {
    id: 's.web',
    stack: 's',
    name: 'web',
    address: '10.77.0.2',
    ports: [{ target: 80, protocol: 'tcp', source: 'declared' }],
    udpPorts: [],
    networks: ['s_default'],
    routes: [],
    endpoints,
  };
}

/** A client connection handed to the forwarder, and the client's own end of it. */
async function clientPair(): Promise<{ client: Socket; accepted: Socket; close: () => void }> {
  let accepted: Socket | undefined;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted = socket;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.33.2', resolve));
  const { port } = server.address() as { port: number };
  const client = connect({ host: '127.0.33.2', port, allowHalfOpen: true });
  await new Promise((resolve) => client.once('connect', resolve));
  while (!accepted) await new Promise((resolve) => setImmediate(resolve));
  return { client, accepted, close: () => server.close() };
}

const read = async (socket: Socket) => {
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  return text;
};

/** An upstream that answers once its client finished sending (so only a passed-on half-close gets an answer). */
const echoAfterEnd = (socket: Socket) => {
  let got = '';
  socket.on('data', (chunk) => {
    got += String(chunk);
  });
  socket.on('end', () => socket.end(`echo ${got}`));
};

test('a half-close is passed on: the answer sent after it arrives', async (t) => {
  const upstream = await listen('127.0.33.1', echoAfterEnd);
  t.teardown(() => upstream.close());
  const forwarder = new Forwarder({
    nodeId: 'n1',
    dialRemote: () => Promise.reject(new Error('no remote here')),
    log: captureLogs('l4').log,
  });
  const { client, accepted, close } = await clientPair();
  t.teardown(close);
  const forwarded = forwarder.forward(accepted, route([endpoint('a', upstream)]), 80);
  client.end('ping');
  t.is(await read(client), 'echo ping');
  await forwarded;
  t.is(forwarder.counters.get('a').active, 0, 'the connection is counted out once closed');
});

test('an endpoint that refuses is passed over for another, and marked as failed', async (t) => {
  const upstream = await listen('127.0.33.1', echoAfterEnd);
  const closed = await listen('127.0.33.1', () => {});
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise((resolve) => closed.close(resolve));
  t.teardown(() => upstream.close());
  const forwarder = new Forwarder({
    nodeId: 'n1',
    dialRemote: () => Promise.reject(new Error('no remote here')),
    log: captureLogs('l4').log,
  });
  // The refusing one first in line: fewer connections than the live one.
  forwarder.counters.get('live').active = 1;
  const { client, accepted, close } = await clientPair();
  t.teardown(close);
  const endpoints = [endpoint('dead', { port: closedPort }), endpoint('live', upstream)];
  const forwarded = forwarder.forward(accepted, route(endpoints), 80);
  client.end('ping');
  t.is(await read(client), 'echo ping');
  await forwarded;
  t.true(
    forwarder.counters.get('dead').failedUntil > Date.now(),
    'the refusing endpoint is marked',
  );
});

test('an endpoint on another node is reached through the remote dialer; none ready closes the connection', async (t) => {
  const upstream = await listen('127.0.33.1', echoAfterEnd);
  t.teardown(() => upstream.close());
  const dialled: string[] = [];
  const forwarder = new Forwarder({
    nodeId: 'n1',
    dialRemote: (nodeId, taskId, port) => {
      dialled.push(`${nodeId}/${taskId}/${port}`);
      const socket = connect({
        host: '127.0.33.1',
        port: (upstream.address() as { port: number }).port,
        allowHalfOpen: true,
      });
      return new Promise((resolve) => socket.once('connect', () => resolve(socket)));
    },
    log: captureLogs('l4').log,
  });
  const first = await clientPair();
  t.teardown(first.close);
  const forwarded = forwarder.forward(first.accepted, route([endpoint('far', upstream, 'n2')]), 80);
  first.client.end('ping');
  t.is(await read(first.client), 'echo ping');
  await forwarded;
  t.deepEqual(dialled, ['n2/far/80']);
  const second = await clientPair();
  t.teardown(second.close);
  await forwarder.forward(second.accepted, route([]), 80);
  t.is(await read(second.client), '', 'closed without an answer');
});

/** Both ends of a fresh TCP connection on 127.0.33.3: the one dialled and the one accepted. */
async function socketPair(): Promise<{ dialled: Socket; accepted: Socket; close: () => void }> {
  const server = await listen('127.0.33.3', () => undefined);
  const acceptedNow = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const dialled = connect({
    host: '127.0.33.3',
    port: (server.address() as { port: number }).port,
    allowHalfOpen: true,
  });
  const accepted = await acceptedNow;
  const close = () => {
    dialled.destroy();
    accepted.destroy();
    server.close();
  };
  return { dialled, accepted, close };
}

test('a side that fails as its half-close is passed on closes the other too, and the splice ends', async (t) => {
  const client = await socketPair();
  const upstream = await socketPair();
  t.teardown(() => {
    client.close();
    upstream.close();
  });
  upstream.accepted.resume();
  const spliced = splice(client.accepted, upstream.dialled);
  // The client's side ends, and fails at once: the upstream connection gets its FIN (splice
  // passes the end on first), then its reset, while its FIN is still on its way out.
  client.accepted.once('end', () => client.accepted.destroy(new Error('the client side failed')));
  client.dialled.end('ping');
  const ended = await Promise.race([
    spliced.then(() => true),
    setTimeout(5000, false, { ref: false }),
  ]);
  t.true(ended, 'both sides closed (the splice ended) within 5 s');
  t.true(upstream.dialled.destroyed);
});

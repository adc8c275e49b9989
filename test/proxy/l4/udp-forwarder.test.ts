import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import test from 'ava';
import { type Receive, udpListeners } from '../../../proxy/l4/listeners.js';
import {
  type RemoteFlowDialer,
  serveRemoteFlow,
  UdpForwarder,
} from '../../../proxy/l4/udp-forwarder.js';
import type { Endpoint, ServiceRoute } from '../../../proxy/routing-table.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.67.0/24. Replicas are UDP echo sockets on .1, clients send
// from .2, and each test's listener (the service's port) is on an address of its own from .10.
const REPLICA_HOST = '127.0.67.1';
const CLIENT_HOST = '127.0.67.2';
const TARGET = 53;

/** A replica: answers each datagram with its name and what it got. */
async function replica(name: string): Promise<{ socket: DatagramSocket; port: number }> {
  const socket = createSocket('udp4');
  socket.on('message', (payload, from) =>
    socket.send(`${name}:${payload}`, from.port, from.address),
  );
  await new Promise<void>((resolve) => socket.bind(0, REPLICA_HOST, resolve));
  return { socket, port: socket.address().port };
}

function endpoint(taskId: string, port: number, nodeId = 'n1'): Endpoint {
  return {
    taskId,
    nodeId,
    host: REPLICA_HOST,
    ports: new Map(),
    udpPorts: new Map([[TARGET, port]]),
  };
}

function service(endpoints: Endpoint[]): ServiceRoute {
  return {
    id: 's.dns',
    stack: 's',
    name: 'dns',
    address: '10.77.0.2',
    ports: [],
    udpPorts: [TARGET],
    networks: ['s_default'],
    routes: [],
    endpoints,
  };
}

/** A client socket: send() resolves with the next answer, or undefined after a while. */
async function client() {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, CLIENT_HOST, resolve));
  const answers: string[] = [];
  const waiting: Array<(text: string) => void> = [];
  socket.on('message', (payload, from) => {
    const text = `${payload} from ${from.address}:${from.port}`;
    const waiter = waiting.shift();
    if (waiter) waiter(text);
    else answers.push(text);
  });
  return {
    socket,
    ask(text: string, to: { host: string; port: number }, timeoutMs = 2000) {
      socket.send(text, to.port, to.host);
      return new Promise<string | undefined>((resolve) => {
        const queued = answers.shift();
        if (queued !== undefined) return resolve(queued);
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(done), 1);
          resolve(undefined);
        }, timeoutMs);
        const done = (answer: string) => {
          clearTimeout(timer);
          resolve(answer);
        };
        waiting.push(done);
      });
    },
  };
}

/** A UDP listener on host (a port of its own) that hands every datagram to the forwarder. */
async function listener(host: string, forwarder: UdpForwarder, route: () => ServiceRoute) {
  const { log } = captureLogs('n1');
  const listeners = udpListeners(log);
  // Port 0 is not a key the listeners know: take a free port from the system first.
  const probe = createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, host, resolve));
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const key = `${host}:${port}`;
  const receive: Receive = (payload, from, reply) =>
    forwarder.forward(key, { ...from, reply }, payload, route(), TARGET);
  await listeners.sync(new Map([[key, receive]]));
  return { host, port, close: () => listeners.close() };
}

function forwarderFor(
  idleMs = 60_000,
  dialRemote: RemoteFlowDialer = () => Promise.reject(new Error('no peers')),
) {
  const logs = captureLogs('n1');
  return { forwarder: new UdpForwarder({ nodeId: 'n1', idleMs, dialRemote, log: logs.log }), logs };
}

test('a client keeps its replica; answers come back from the address it sent to', async (t) => {
  const [a, b] = [await replica('a'), await replica('b')];
  const { forwarder } = forwarderFor();
  const route = service([endpoint('ta', a.port), endpoint('tb', b.port)]);
  const port = await listener('127.0.67.10', forwarder, () => route);
  const c = await client();
  t.teardown(() => {
    for (const s of [a.socket, b.socket, c.socket]) s.close();
    port.close();
    forwarder.close();
  });
  const first = await c.ask('1', port);
  const name = first?.split(':')[0];
  t.regex(first ?? '', /^[ab]:1 from 127\.0\.67\.10:\d+$/);
  t.is(first?.endsWith(`:${port.port}`), true, 'from the listener, not from the replica');
  for (const text of ['2', '3', '4']) t.is((await c.ask(text, port))?.split(':')[0], name);
  t.is(forwarder.size, 1);
});

test('new clients spread over the replicas: the one with the fewest flows', async (t) => {
  const [a, b] = [await replica('a'), await replica('b')];
  const { forwarder } = forwarderFor();
  const route = service([endpoint('ta', a.port), endpoint('tb', b.port)]);
  const port = await listener('127.0.67.11', forwarder, () => route);
  const clients = [await client(), await client(), await client(), await client()];
  t.teardown(() => {
    for (const s of [a.socket, b.socket, ...clients.map((c) => c.socket)]) s.close();
    port.close();
    forwarder.close();
  });
  const names: string[] = [];
  for (const c of clients) names.push((await c.ask('hi', port))?.split(':')[0] ?? 'none');
  t.deepEqual(names.sort(), ['a', 'a', 'b', 'b']);
});

test('an idle flow is forgotten after the idle timeout; the client is then served afresh', async (t) => {
  const a = await replica('a');
  const { forwarder } = forwarderFor(200);
  const route = service([endpoint('ta', a.port)]);
  const port = await listener('127.0.67.12', forwarder, () => route);
  const c = await client();
  t.teardown(() => {
    for (const s of [a.socket, c.socket]) s.close();
    port.close();
    forwarder.close();
  });
  t.is((await c.ask('1', port))?.split(' ')[0], 'a:1');
  t.is(forwarder.size, 1);
  await eventually(() => forwarder.size === 0, {
    what: 'the idle flow forgotten',
    timeoutMs: 5000,
  });
  t.is((await c.ask('2', port))?.split(' ')[0], 'a:2');
});

test('a flow to a replica that is gone is ended: the next datagram goes to a live one', async (t) => {
  const [a, b] = [await replica('a'), await replica('b')];
  const { forwarder } = forwarderFor();
  let route = service([endpoint('ta', a.port), endpoint('tb', b.port)]);
  const port = await listener('127.0.67.13', forwarder, () => route);
  const c = await client();
  t.teardown(() => {
    for (const s of [a.socket, b.socket, c.socket]) s.close();
    port.close();
    forwarder.close();
  });
  const first = (await c.ask('1', port))?.split(':')[0];
  const [survivor] = route.endpoints.filter((e) => e.taskId !== `t${first}`);
  route = service([survivor as Endpoint]);
  forwarder.retain(new Set([survivor?.taskId as string]));
  t.is(forwarder.size, 0);
  t.is((await c.ask('2', port))?.split(':')[0], survivor?.taskId.slice(1));
});

test('without a ready replica the datagram is dropped, and that is logged once a minute', async (t) => {
  const { forwarder, logs } = forwarderFor();
  const port = await listener('127.0.67.14', forwarder, () => service([]));
  const c = await client();
  t.teardown(() => {
    c.socket.close();
    port.close();
    forwarder.close();
  });
  t.is(await c.ask('1', port, 300), undefined);
  t.is(await c.ask('2', port, 300), undefined);
  const drops = logs.lines.filter((l) => l.msg.startsWith('no ready replica serves this UDP port'));
  t.is(drops.length, 1);
  t.like(drops[0], { service: 's.dns', port: '53/udp' });
});

test('a replica on another node is reached over a stream, both ways, framed', async (t) => {
  const a = await replica('far');
  const { log } = captureLogs('n2');
  // The stream the other node's agent serves, as a TCP connection here (mTLS in the agent),
  // handed over paused both ends, as the transport hands its streams over.
  const peer: Server = createServer((socket) =>
    serveRemoteFlow(socket.pause(), REPLICA_HOST, a.port, log),
  );
  await new Promise<void>((resolve) => peer.listen(0, '127.0.67.3', resolve));
  const dialled: string[] = [];
  const { forwarder } = forwarderFor(60_000, (nodeId, taskId, target) => {
    dialled.push(`${nodeId} ${taskId} ${target}`);
    const { port } = peer.address() as { port: number };
    return Promise.resolve(connect({ host: '127.0.67.3', port }).pause());
  });
  const route = service([endpoint('tfar', a.port, 'n2')]);
  const port = await listener('127.0.67.15', forwarder, () => route);
  const c = await client();
  t.teardown(() => {
    for (const s of [a.socket, c.socket]) s.close();
    port.close();
    forwarder.close();
    peer.close();
  });
  // The first datagrams wait for the stream to open, in order.
  c.socket.send('1', port.port, port.host);
  const answers = [await c.ask('2', port), await c.ask('3', port)];
  t.deepEqual(
    answers.map((a) => a?.split(' ')[0]),
    ['far:1', 'far:2'],
  );
  t.is((await c.ask('4', port))?.split(' ')[0], 'far:3');
  t.deepEqual(dialled, ['n2 tfar 53'], 'one stream for the flow');
  forwarder.close();
  await eventually(
    async () => (await new Promise<number>((r) => peer.getConnections((_, n) => r(n)))) === 0,
    { what: 'the stream closed with the flow' },
  );
});

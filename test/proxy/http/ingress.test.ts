import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import test from 'ava';
import { HttpIngress } from '../../../proxy/http/ingress.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../../../proxy/http/limits.js';
import type { HostRoutes } from '../../../proxy/http/routes.js';
import { IngressServers } from '../../../proxy/http/servers.js';
import { dialLocal } from '../../../proxy/l4/forwarder.js';
import type { Endpoint, ServiceRoute } from '../../../proxy/routing-table.js';
import { connectionCount } from '../../helpers/connections.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.33.0/24 (shared with the forwarder test: .3 and up here).
const HOST = '127.0.33.3';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, HOST, () => resolve((server.address() as { port: number }).port)),
  );
}

/** A replica that answers with its name and the body it got. */
async function replica(name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += String(chunk);
    });
    req.on('end', () => res.end(`${name} got ${req.method} ${req.url} ${body}`));
  });
  return { port: await listen(server), server };
}

/** A port where nothing listens any more. */
async function refusingPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function endpoint(taskId: string, port: number): Endpoint {
  return { taskId, nodeId: 'n1', host: HOST, ports: new Map([[80, port]]), udpPorts: new Map() };
}

async function ingressFor(
  endpoints: Endpoint[],
  options: {
    responseTimeoutMs?: number;
    limits?: Partial<HttpLimits>;
    /** Held before each connection to a replica is made (a loaded agent's bridge, a far node). */
    connecting?: () => Promise<void>;
    /** Called for each connection made through `connectOutliving` (none when left out). */
    outliving?: (taskId: string) => void;
  } = {},
) {
  const service: ServiceRoute = {
    id: 's.web',
    stack: 's',
    name: 'web',
    address: undefined,
    ports: [{ target: 80, protocol: 'tcp', source: 'declared' }],
    udpPorts: [],
    networks: [],
    routes: [],
    endpoints,
  };
  const routes: HostRoutes = new Map([
    ['web.s.mesh', [{ host: 'web.s.mesh', prefix: '/', stripPrefix: false, service, target: 80 }]],
  ]);
  const logs = captureLogs('ingress');
  const connect = async (e: Endpoint, target: number) => {
    await options.connecting?.();
    return dialLocal(e.host, e.ports.get(target) ?? 0);
  };
  const ingress = new HttpIngress({
    routes: () => routes,
    connect,
    connectOutliving:
      options.outliving &&
      ((e, target) => {
        options.outliving?.(e.taskId);
        return connect(e, target);
      }),
    trusted: () => false,
    responseTimeoutMs: options.responseTimeoutMs ?? 60_000,
    limits: { ...DEFAULT_HTTP_LIMITS, ...options.limits },
    log: logs.log,
  });
  const server = createServer((req, res) => ingress.handle(req, res, 'http'));
  const port = await listen(server);
  const close = () => {
    server.close();
    ingress.close();
  };
  return { ingress, port, close, logs, server };
}

function send(
  port: number,
  method: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: HOST, port, method, path: '/x', headers: { host: 'web.s.mesh' } },
      (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += String(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('a POST whose replica refuses the connect goes, body and all, to another', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { ingress, port, close } = await ingressFor([
    endpoint('dead', await refusingPort()),
    endpoint('live', live.port),
  ]);
  t.teardown(close);
  // The refusing one first in line: fewer connections than the live one.
  ingress.counters.get('live').active = 1;
  const answer = await send(port, 'POST', 'order=42');
  t.deepEqual(answer, { status: 200, text: 'live got POST /x order=42' });
  t.true(
    ingress.counters.get('dead').failedUntil > Date.now(),
    'the refusing replica is passed over for a while',
  );
});

test('502 with the reason when no replica takes the request', async (t) => {
  const { port, close } = await ingressFor([endpoint('dead', await refusingPort())]);
  t.teardown(close);
  const answer = await send(port, 'GET');
  t.is(answer.status, 502);
  t.regex(answer.text, /^no replica of s\.web took the request \(last: connect ECONNREFUSED/);
});

test('504 when the replica does not start its answer in time', async (t) => {
  const slow = createServer(() => {}); // never answers
  const slowPort = await listen(slow);
  t.teardown(() => slow.closeAllConnections());
  t.teardown(() => slow.close());
  // Not much shorter: the connect limit is half of it, and a loaded machine (CI, several test
  // files at once) may take a few hundred ms to connect on loopback.
  const { port, close } = await ingressFor([endpoint('slow', slowPort)], {
    responseTimeoutMs: 1500,
  });
  t.teardown(close);
  const answer = await send(port, 'GET');
  t.is(answer.status, 504, answer.text);
  t.regex(answer.text, /no answer from slow within 1\.5 s/);
});

test('a replica that answers Connection: close gets connections that outlive its own from then on; one that keeps them open does not', async (t) => {
  const keeping = await replica('keeping');
  t.teardown(() => keeping.server.close());
  const closing = createServer((_req, res) => res.setHeader('connection', 'close').end('closing'));
  const closingPort = await listen(closing);
  t.teardown(() => closing.close());
  const outliving: string[] = [];
  const { port, close } = await ingressFor(
    [endpoint('keeping', keeping.port), endpoint('closing', closingPort)],
    { outliving: (taskId) => outliving.push(taskId) },
  );
  t.teardown(close);
  // One request at a time, until each replica has answered a few (the balancer picks either).
  const answers: { status: number; text: string }[] = [];
  const count = (text: string) => answers.filter((a) => a.text.startsWith(text)).length;
  while (answers.length < 100 && (count('closing') < 3 || count('keeping') < 3))
    answers.push(await send(port, 'GET'));
  t.true(answers.every((a) => a.status === 200));
  t.true(count('keeping') >= 3 && count('closing') >= 3, `${answers.length} answers`);
  const closingAnswers = count('closing');
  t.deepEqual(
    outliving,
    Array(closingAnswers - 1).fill('closing'),
    'every connection to the closing replica after its first answer, none to the other',
  );
});

test('the ingress counts requests per service by status class', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { ingress, port, close } = await ingressFor([endpoint('live', live.port)]);
  t.teardown(close);
  await send(port, 'GET');
  await send(port, 'GET');
  t.like(await ingress.metrics.of('s.web'), { requests: 2, statuses: { '2xx': 2 } });
});

test('pipelined requests reach the replica one at a time; a client that goes leaves nothing open', async (t) => {
  let active = 0;
  let most = 0;
  let served = 0;
  const page = Buffer.alloc(1024 * 1024, 'x');
  const big = createServer((_req, res) => {
    active += 1;
    served += 1;
    most = Math.max(most, active);
    res.once('close', () => {
      active -= 1;
    });
    res.end(page);
  });
  const bigPort = await listen(big);
  t.teardown(() => big.close());
  const { port, close } = await ingressFor([endpoint('big', bigPort)]);
  t.teardown(close);
  const client = connect(port, HOST);
  await new Promise((resolve) => client.once('connect', resolve));
  client.write('GET /page HTTP/1.1\r\nHost: web.s.mesh\r\n\r\n'.repeat(50));
  // It reads a little of the first answer, then goes.
  await new Promise((resolve) => client.once('data', resolve));
  client.destroy();
  // Other tests of this file run beside it: the replica's own connections tell what is left.
  await eventually(async () => active === 0 && (await connectionCount(big)) === 0, {
    what: 'every upstream request ended and its connection closed',
    timeoutMs: 10_000,
  });
  t.is(most, 1, 'never more than one request of the connection at the replica');
  t.true(served <= 2, `${served} of 50 requests reached the replica before the client went`);
});

test('a client that leaves while its request waits for a connection: the replica is not asked, and no connection to it stays', async (t) => {
  let answered = 0;
  // An answer that goes on: only the ingress giving it up ends it.
  const streaming = createServer((_req, res) => {
    answered += 1;
    res.write('first part\n');
  });
  let connections = 0;
  streaming.on('connection', () => {
    connections += 1;
  });
  const streamingPort = await listen(streaming);
  t.teardown(() => streaming.closeAllConnections());
  t.teardown(() => streaming.close());
  let connected: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    connected = resolve;
  });
  let asked: () => void = () => undefined;
  const connecting = new Promise<void>((resolve) => {
    asked = resolve;
  });
  const { port, close, server } = await ingressFor([endpoint('streaming', streamingPort)], {
    connecting: () => {
      asked();
      return held;
    },
  });
  t.teardown(close);
  const client = connect(port, HOST);
  client.on('error', () => undefined);
  client.write('GET /events HTTP/1.1\r\nHost: web.s.mesh\r\n\r\n');
  await connecting;
  client.destroy();
  await eventually(async () => (await connectionCount(server)) === 0, {
    what: 'the ingress saw the client go',
  });
  connected();
  await eventually(() => connections === 1, { what: 'the connection to the replica made' });
  // At most the pool's idle timeout (4 s) for a connection made but never used.
  await eventually(async () => (await connectionCount(streaming)) === 0, {
    what: 'the connection to the replica closed',
    timeoutMs: 10_000,
  });
  t.is(answered, 0, 'a request nobody waits for is not sent');
});

test('a client pipelining past the queue is cut off, with a warning; others are served', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { port, close, logs } = await ingressFor([endpoint('live', live.port)]);
  t.teardown(close);
  const client = connect(port, HOST);
  t.teardown(() => client.destroy());
  let answers = '';
  client.on('data', (chunk: Buffer) => {
    answers += String(chunk);
  });
  const closed = new Promise((resolve) => client.once('close', resolve));
  client.write('GET /x HTTP/1.1\r\nHost: web.s.mesh\r\n\r\n'.repeat(1000));
  await closed;
  const served = answers.split('HTTP/1.1 200').length - 1;
  t.true(served < 100, `${served} of 1000 pipelined requests answered`);
  await logs.waitFor((line) => /pipelined more requests/.test(line.msg));
  t.is((await send(port, 'GET')).status, 200, 'another client is served');
});

test('an absolute-form request line goes by its authority, on in origin form', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { port, close } = await ingressFor([endpoint('live', live.port)]);
  t.teardown(close);
  const client = connect(port, HOST);
  t.teardown(() => client.destroy());
  client.write(
    'GET http://web.s.mesh/x?y=1 HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n',
  );
  let text = '';
  for await (const chunk of client) text += String(chunk);
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.regex(text, /live got GET \/x\?y=1 $/);
});

/** Sends a request head and part of its body, then nothing. */
async function stalledUpload(port: number, sent: string): Promise<Socket> {
  const client = connect(port, HOST);
  await new Promise((resolve) => client.once('connect', resolve));
  client.write(
    `POST /x HTTP/1.1\r\nHost: web.s.mesh\r\nContent-Length: 100\r\nConnection: close\r\n\r\n${sent}`,
  );
  return client;
}

test('a slow upload never reaches a replica: 408 once the body stalls past its timeout', async (t) => {
  let asked = 0;
  const live = createServer((_req, res) => {
    asked += 1;
    res.end('ok');
  });
  const livePort = await listen(live);
  t.teardown(() => live.close());
  const { port, close } = await ingressFor([endpoint('live', livePort)], {
    limits: { bodyTimeoutMs: 300 },
  });
  t.teardown(close);
  const client = await stalledUpload(port, 'part of it');
  let text = '';
  for await (const chunk of client) text += String(chunk);
  t.regex(text, /^HTTP\/1\.1 408 /);
  t.regex(text, /no request body for 0\.3 s/);
  t.is(asked, 0, 'the replica never saw it');
});

test('a body is read whole before a replica is asked, however slowly it comes', async (t) => {
  const seen: Array<{ at: number; body: string }> = [];
  const live = createServer((req, res) => {
    const at = Date.now();
    let body = '';
    req.on('data', (chunk) => {
      body += String(chunk);
    });
    req.on('end', () => {
      seen.push({ at, body });
      res.end('ok');
    });
  });
  const livePort = await listen(live);
  t.teardown(() => live.close());
  const { port, close } = await ingressFor([endpoint('live', livePort)]);
  t.teardown(close);
  const client = await stalledUpload(port, 'a'.repeat(50));
  await new Promise((resolve) => setTimeout(resolve, 200)); // the client is slow on purpose
  t.is(seen.length, 0, 'no replica asked while the body is still coming');
  const last = Date.now();
  client.write('b'.repeat(50));
  let text = '';
  for await (const chunk of client) text += String(chunk);
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.is(seen[0]?.body, `${'a'.repeat(50)}${'b'.repeat(50)}`);
  t.true((seen[0]?.at ?? 0) >= last, 'asked only once the body was whole');
});

test('a client that does not read its answer is cut off after the send timeout', async (t) => {
  const page = Buffer.alloc(16 * 1024 * 1024, 'y');
  let upstreamGone = false;
  const big = createServer((_req, res) => {
    res.once('close', () => {
      upstreamGone = true;
    });
    res.end(page);
  });
  const bigPort = await listen(big);
  t.teardown(() => big.close());
  const { port, close } = await ingressFor([endpoint('big', bigPort)], {
    limits: { sendTimeoutMs: 300 },
  });
  t.teardown(close);
  const client = connect(port, HOST);
  client.pause(); // it does not read
  await new Promise((resolve) => client.once('connect', resolve));
  client.write('GET /page HTTP/1.1\r\nHost: web.s.mesh\r\n\r\n');
  await eventually(() => upstreamGone, { what: 'the replica let go', timeoutMs: 10_000 });
  // What it reads afterwards is what was on its way; then the connection ends, the page unsent.
  let received = 0;
  for await (const chunk of client) received += (chunk as Buffer).length;
  t.true(received < page.length, `${received} of ${page.length} bytes`);
});

test('a client over its connection limit is answered 429 and closed; others are served', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { ingress, close } = await ingressFor([endpoint('live', live.port)]);
  t.teardown(close);
  const limits = { ...DEFAULT_HTTP_LIMITS, connectionsPerClient: 2 };
  const servers = new IngressServers(
    ingress,
    () => new Map(),
    async () => {
      throw new Error('no certificates here');
    },
    limits,
    512,
    captureLogs('servers').log,
  );
  // An ephemeral port of this file's own address.
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  await servers.listen(HOST, port, 0);
  t.teardown(() => servers.close());
  const held = [connect(port, HOST), connect(port, HOST)];
  t.teardown(() => {
    for (const socket of held) socket.destroy();
  });
  await Promise.all(held.map((s) => new Promise((resolve) => s.once('connect', resolve))));
  const third = connect(port, HOST);
  let text = '';
  for await (const chunk of third) text += String(chunk);
  t.regex(text, /^HTTP\/1\.1 429 Too Many Requests/);
  for (const socket of held) socket.destroy();
  await eventually(async () => (await send(port, 'GET').catch(() => undefined))?.status === 200, {
    what: 'served again once the others went',
    timeoutMs: 5000,
  });
});

test('past its limit a replica is not sent more requests: they wait their turn, and a full queue answers 503', async (t) => {
  // A replica that holds each request until told, counting how many it holds at once.
  const held: Array<() => void> = [];
  let most = 0;
  const server = createServer((req, res) => {
    held.push(() => res.end(`slow got ${req.url}`));
    most = Math.max(most, held.length);
  });
  const port = await listen(server);
  t.teardown(() => server.close());
  const limits = { requestsPerReplica: 1, queueLength: 1, queueTimeoutMs: 60_000 };
  const {
    ingress,
    port: ingressPort,
    close,
  } = await ingressFor([endpoint('slow', port)], {
    limits,
  });
  t.teardown(close);
  const first = send(ingressPort, 'GET');
  await eventually(() => held.length === 1 || undefined, { what: 'the first request held' });
  const second = send(ingressPort, 'GET');
  await eventually(() => ingress.waiting('s.web') === 1 || undefined, {
    what: 'the second waiting',
  });
  const refused = await send(ingressPort, 'GET');
  t.is(refused.status, 503, 'the queue holds one: the third is refused at once');
  t.is(refused.text, 'every replica of s.web is busy and 1 requests already wait\n');
  held.shift()?.();
  t.deepEqual(await first, { status: 200, text: 'slow got /x' });
  await eventually(() => held.length === 1 || undefined, { what: 'the second sent on' });
  held.shift()?.();
  t.deepEqual(await second, { status: 200, text: 'slow got /x' }, 'the one that waited is served');
  t.is(most, 1, 'the replica never held two at once');
});

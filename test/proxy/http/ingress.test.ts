import { createServer, request, type Server } from 'node:http';
import test from 'ava';
import { HttpIngress } from '../../../proxy/http/ingress.js';
import type { HostRoutes } from '../../../proxy/http/routes.js';
import { dialLocal } from '../../../proxy/l4/forwarder.js';
import type { Endpoint, ServiceRoute } from '../../../proxy/routing-table.js';
import { captureLogs } from '../../helpers/logs.js';

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
  return { taskId, nodeId: 'n1', host: HOST, ports: new Map([[80, port]]) };
}

async function ingressFor(endpoints: Endpoint[], options: { responseTimeoutMs?: number } = {}) {
  const service: ServiceRoute = {
    id: 's.web',
    stack: 's',
    name: 'web',
    address: undefined,
    ports: [{ target: 80, protocol: 'tcp' }],
    networks: [],
    routes: [],
    endpoints,
  };
  const routes: HostRoutes = new Map([
    ['web.s.mesh', [{ host: 'web.s.mesh', prefix: '/', stripPrefix: false, service, target: 80 }]],
  ]);
  const connect = (e: Endpoint, target: number) => dialLocal(e.host, e.ports.get(target) ?? 0);
  const ingress = new HttpIngress({
    routes: () => routes,
    connect,
    connectRaw: connect,
    trusted: () => false,
    responseTimeoutMs: options.responseTimeoutMs ?? 60_000,
    log: captureLogs('ingress').log,
  });
  const server = createServer((req, res) => ingress.handle(req, res, 'http'));
  const port = await listen(server);
  const close = () => {
    server.close();
    ingress.close();
  };
  return { ingress, port, close };
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
  const { port, close } = await ingressFor([endpoint('slow', slowPort)], {
    responseTimeoutMs: 300,
  });
  t.teardown(close);
  const answer = await send(port, 'GET');
  t.is(answer.status, 504);
  t.regex(answer.text, /no answer from slow within 0\.3 s/);
});

test('the ingress counts requests per service by status class', async (t) => {
  const live = await replica('live');
  t.teardown(() => live.server.close());
  const { ingress, port, close } = await ingressFor([endpoint('live', live.port)]);
  t.teardown(close);
  await send(port, 'GET');
  await send(port, 'GET');
  t.like(ingress.metrics.of('s.web'), { requests: 2, statuses: { '2xx': 2 } });
});

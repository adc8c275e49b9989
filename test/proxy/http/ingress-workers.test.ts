import cluster from 'node:cluster';
import { once } from 'node:events';
import { Agent, createServer, request } from 'node:http';
import { connect } from 'node:net';
import test from 'ava';
import type { UnservedPort } from '../../../mesh/api/nodes.js';
import type { NodeIdentity } from '../../../mesh/pki/identity.js';
import type { Admission } from '../../../mesh/transport/tls.js';
import type { Transport } from '../../../mesh/transport/transport.js';
import { IngressWorkers } from '../../../proxy/http/ingress-workers.js';
import { DEFAULT_HTTP_LIMITS } from '../../../proxy/http/limits.js';
import type { HttpRoute } from '../../../proxy/http/routes.js';
import { type TunnelGrant, tunnelGrant } from '../../../proxy/http/worker-tunnels.js';
import { splice } from '../../../proxy/l4/splice.js';
import type { Endpoint, ServiceRoute } from '../../../proxy/routing-table.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';
import { eventually } from '../../helpers/poll.js';

// This file's loopback block: 127.0.52.0/24 (a backend on .1, the ingress workers on .2 to .7,
// node n2's agent on .8; the hosts of the endpoints elsewhere, .8 and .9, are never dialled:
// a worker reaches them over a stream to their node).
const INGRESS = { host: '127.0.52.2', port: 18_052 };
const RESTARTED = { host: '127.0.52.3', port: 18_052 };
const REFUSING = { host: '127.0.52.4', port: 18_052 };
const RENEWING = { host: '127.0.52.5', port: 18_052 };
const LAZY = { host: '127.0.52.6', port: 18_052 };
const TAKEN = { host: '127.0.52.7', port: 18_052 };
const HOLDING = { host: '127.0.52.10', port: 18_052 };

const ca = await testCluster();
const [n1, n2] = await Promise.all([ca.identity({ nodeId: 'n1' }), ca.identity({ nodeId: 'n2' })]);

function route(host: string, endpoint: Endpoint): [string, HttpRoute[]] {
  const service: ServiceRoute = {
    id: `s.${host.split('.')[0]}`,
    stack: 's',
    name: host.split('.')[0] as string,
    address: undefined,
    ports: [{ target: 80, protocol: 'tcp', source: 'declared' }],
    udpPorts: [],
    networks: [],
    routes: [],
    endpoints: [endpoint],
  };
  return [host, [{ host, prefix: '/', stripPrefix: false, service, target: 80 }]];
}

function get(
  host: string,
  ingress: { host: string; port: number } = INGRESS,
  agent: Agent | false = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...ingress, path: '/', headers: { host }, agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += String(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A route to a replica on node n1 itself: the backend, dialled directly. */
function routeHere(taskId: string, backendPort: number): [string, HttpRoute[]] {
  const ports = new Map([[80, backendPort]]);
  return route('here.s.mesh', {
    taskId,
    nodeId: 'n1',
    host: '127.0.52.1',
    ports,
    udpPorts: new Map(),
  });
}

/** A route to a replica on node n2: its host is never dialled, a worker streams to n2 for it. */
function routeOnN2(host: string, taskId: string, backendPort: number): [string, HttpRoute[]] {
  const ports = new Map([[80, backendPort]]);
  return route(host, { taskId, nodeId: 'n2', host: '127.0.52.8', ports, udpPorts: new Map() });
}

/** Answers ok; asked for a host named closing.*, it closes its connection after the answer. */
async function backend() {
  const server = createServer((req, res) => {
    if (req.headers.host?.startsWith('closing.')) res.setHeader('connection', 'close');
    res.end('ok\n');
  });
  server.listen(0, '127.0.52.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Node n2's agent: each stream a member opens to it (noted as `<member> <target> <serial> @<the
 * state index it was chosen from>`) goes to the backend, which stands in for its relay too.
 */
async function nodeN2(backendPort: number, opened: string[] = []): Promise<Transport> {
  const transport = await startTransport(n2, '127.0.52.8', captureLogs('n2').log);
  transport.serveStreams((incoming) => {
    const { peer, target, asOf } = incoming;
    opened.push(`${peer.nodeId} ${target} ${peer.serial} @${asOf}`);
    const socket = connect({ host: '127.0.52.1', port: backendPort });
    socket.once('connect', () => void splice(incoming.accept(), socket));
    socket.once('error', () => incoming.refuse(502, 'backend down'));
  });
  return transport;
}

/** What the agent grants its workers: n1's identity, n2 where it listens (n3 is no member). */
function grantFor(
  n2Agent: Transport,
  refusal: Admission = () => undefined,
  identity: NodeIdentity = n1,
): TunnelGrant {
  return tunnelGrant(
    identity,
    [{ id: 'n2', address: n2Agent.address }],
    (nodeId) => (nodeId === 'n2' ? { serial: n2.serial } : undefined),
    refusal,
  );
}

/** Two ingress workers of node n1 on `ingress`; told.listening: each time they said so. */
function ingressWorkers(ingress: { host: string; port: number }) {
  const logs = captureLogs('n1');
  const told = { listening: [] as UnservedPort[][] };
  const workers = new IngressWorkers({
    workers: 2,
    settings: {
      nodeId: 'n1',
      advertise: ingress.host,
      httpPort: ingress.port,
      httpsPort: 0,
      trustedProxies: [],
      responseTimeoutMs: 5000,
      limits: DEFAULT_HTTP_LIMITS,
      maxConnections: 512,
    },
    keyPairOf: () => Promise.reject(new Error('no certificates here')),
    onListening: (refused) => {
      told.listening.push(refused);
    },
    log: logs.log,
  });
  return { workers, logs, told };
}

/** The ingress worker processes this test process runs now (the tests run one at a time). */
const running = () => Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());

test.serial(
  'the ingress workers serve the routes they are sent, here and over their own streams to other nodes, and sum what they counted',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const opened: string[] = [];
    const n2Agent = await nodeN2(backendPort, opened);
    const { workers, logs } = ingressWorkers(INGRESS);
    const ports = new Map([[80, backendPort]]);
    const udpPorts = new Map<number, number>();
    workers.setTunnels(grantFor(n2Agent));
    workers.setRoutes(
      new Map([
        routeHere('t1', backendPort),
        routeOnN2('far.s.mesh', 't2', backendPort),
        route('gone.s.mesh', { taskId: 't3', nodeId: 'n3', host: '127.0.52.9', ports, udpPorts }),
        routeOnN2('closing.s.mesh', 't4', backendPort),
      ]),
      7,
    );
    await workers.start();
    try {
      t.is(running().length, 2);
      // Each request on a connection of its own: the kernel hands each to either worker.
      const answers = await Promise.all(Array.from({ length: 40 }, () => get('here.s.mesh')));
      t.true(answers.every((a) => a.status === 200 && a.body === 'ok\n'));
      t.deepEqual(await get('far.s.mesh'), { status: 200, body: 'ok\n' });
      t.deepEqual(
        opened,
        [`n1 t2/80 ${n1.serial} @7`],
        'a replica elsewhere: its port, over a stream the worker opened as node n1',
      );
      // One client connection, so one worker: its second request to a replica that closes its
      // connections goes to the relay of the replica's node.
      const oneConnection = new Agent({ keepAlive: true, maxSockets: 1 });
      t.teardown(() => oneConnection.destroy());
      for (let i = 0; i < 2; i += 1)
        t.deepEqual(await get('closing.s.mesh', INGRESS, oneConnection), {
          status: 200,
          body: 'ok\n',
        });
      t.deepEqual(opened.slice(1), [`n1 t4/80 ${n1.serial} @7`, `n1 http/t4/80 ${n1.serial} @7`]);
      const gone = await get('gone.s.mesh');
      t.is(gone.status, 502);
      t.regex(gone.body, /node n3 is not a member/);
      // The workers' log lines come out of the agent's logger, named by the node that wrote them.
      const line = await logs.waitFor(
        (l) => l.msg === 'replica did not take the request; trying another',
      );
      t.like(line, { node: 'n1', task: 't3', onNode: 'n3', level: 40 });
      t.like(await workers.stats('s.here'), { requests: 40, statuses: { '2xx': 40 } });
      t.like(await workers.stats('s.gone'), { requests: 1, statuses: { '5xx': 1 } });
      t.like(await workers.requests(), { 's.here': 40, 's.far': 1, 's.gone': 1, 's.closing': 2 });
      t.regex(
        await workers.metrics(),
        /mesh_http_requests_total\{service="s\.here",code="2xx"\} 40/,
      );
    } finally {
      await workers.close();
      await n2Agent.close();
      server.close();
    }
    t.is(running().length, 0, 'no worker outlives the ingress');
    // The cluster module's shared listening socket goes a moment after the last worker (CI once
    // met a connect taken into its backlog and reset): refused soon after, never served.
    const refused = await eventually(
      () =>
        get('here.s.mesh').then(
          () => t.fail('served after the workers closed'),
          (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED',
        ),
      { what: 'the ingress port refusing connections' },
    );
    t.true(refused, 'closed with the workers');
  },
);

test.serial(
  'the workers say they hold the latest routes only once each has them (a stop waits for it)',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const { workers } = ingressWorkers(HOLDING);
    workers.setRoutes(new Map([routeHere('t1', backendPort)]), 7);
    await workers.start();
    const [paused] = running();
    try {
      t.true(await workers.holdLatestRoutes(5000), 'both have the routes of index 7');
      // A worker that cannot read its messages (busy, here stopped) has not taken them in.
      paused?.process.kill('SIGSTOP');
      workers.setRoutes(new Map(), 8);
      t.false(await workers.holdLatestRoutes(300), 'one worker still routes as of 7');
      paused?.process.kill('SIGCONT');
      t.true(await workers.holdLatestRoutes(5000), 'both have the routes of index 8');
    } finally {
      paused?.process.kill('SIGCONT');
      await workers.close();
      server.close();
    }
  },
);

test.serial(
  'the workers start with the first route, and each says it listens (a deploy waits for it)',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const { workers, told } = ingressWorkers(LAZY);
    try {
      await workers.start();
      t.is(running().length, 0, 'an idle node runs none');
      t.deepEqual(told.listening, []);
      workers.setRoutes(new Map([routeHere('t1', backendPort)]), 7);
      await eventually(() => (told.listening.length > 0 ? true : undefined), {
        what: 'the workers listening',
      });
      // Said as the first one listens: the request goes through at once.
      t.deepEqual(await get('here.s.mesh', LAZY), { status: 200, body: 'ok\n' });
      await eventually(() => (told.listening.length === 2 ? true : undefined), {
        what: 'both workers listening',
      });
      t.deepEqual(told.listening, [[], []], 'each worker, every port taken');
      t.is(running().length, 2);
    } finally {
      await workers.close();
      server.close();
    }
  },
);

test.serial(
  'a port the workers cannot take is told, with who holds it, and taken up once freed and the routes change',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const squatter = createServer();
    squatter.listen(TAKEN.port, TAKEN.host);
    await once(squatter, 'listening');
    const { workers, told, logs } = ingressWorkers(TAKEN);
    const routes = (taskId: string) => new Map([routeHere(taskId, backendPort)]);
    try {
      workers.setRoutes(routes('t1'), 7);
      await workers.start();
      t.is(told.listening.length, 2, 'each worker');
      const [refused] = told.listening[0] ?? [];
      t.is(refused?.port, TAKEN.port);
      t.regex(
        refused?.reason ?? '',
        new RegExp(`^the port is taken on this node by \\S+ \\(pid ${process.pid}\\)$`),
      );
      t.like(await logs.waitFor((l) => /HTTP ingress not served/.test(l.msg)), {
        address: `${TAKEN.host}:${TAKEN.port}`,
        reason: refused?.reason,
      });
      // Freed: the next change of the routes has each worker try again, and say so.
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
      workers.setRoutes(routes('t2'), 8);
      await eventually(() => (told.listening.length === 4 ? true : undefined), {
        what: 'both workers trying again',
      });
      t.deepEqual(told.listening.slice(2), [[], []]);
      t.deepEqual(await get('here.s.mesh', TAKEN), { status: 200, body: 'ok\n' });
    } finally {
      await workers.close();
      squatter.close();
      server.close();
    }
  },
);

test.serial(
  'a worker that dies: the other serves on, another is started with the routes, and it says so',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const { workers, logs } = ingressWorkers(RESTARTED);
    workers.setRoutes(new Map([routeHere('t1', backendPort)]), 7);
    await workers.start();
    try {
      t.deepEqual(await get('here.s.mesh', RESTARTED), { status: 200, body: 'ok\n' });
      // Nothing from outside makes a worker fail: one is killed as a crash would end it.
      const [victim] = running();
      victim?.process.kill('SIGKILL');
      await once(victim as NonNullable<typeof victim>, 'exit');
      const during = await Promise.all(
        Array.from({ length: 10 }, () => get('here.s.mesh', RESTARTED)),
      );
      t.true(
        during.every((a) => a.status === 200),
        'the other worker serves meanwhile',
      );
      t.like(await logs.waitFor((l) => /ingress worker stopped: starting another/.test(l.msg)), {
        level: 50,
        restartInMs: 1000,
        signal: 'SIGKILL',
      });
      await eventually(() => (running().length === 2 ? true : undefined), {
        what: 'two workers again',
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      const after = await Promise.all(
        Array.from({ length: 10 }, () => get('here.s.mesh', RESTARTED)),
      );
      t.true(after.every((a) => a.status === 200 && a.body === 'ok\n'));
    } finally {
      await workers.close();
      server.close();
    }
  },
);

test.serial(
  'a worker refuses a node whose certificate the cluster does not honour, and drops its session once the agent says so',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const n2Agent = await nodeN2(backendPort);
    const { workers } = ingressWorkers(REFUSING);
    const retired = `certificate ${n2.serial} of node n2 is retired: a newer one was issued to it`;
    workers.setTunnels(
      grantFor(n2Agent, ({ serial }) => (serial === n2.serial ? retired : undefined)),
    );
    workers.setRoutes(new Map([routeOnN2('far.s.mesh', 't2', backendPort)]), 7);
    const answeredSoon = (status: number, what: string) =>
      eventually(
        async () => ((await get('far.s.mesh', REFUSING)).status === status ? true : undefined),
        { what },
      );
    await workers.start();
    try {
      const refused = await get('far.s.mesh', REFUSING);
      t.is(refused.status, 502);
      t.true(refused.body.includes(retired), refused.body);
      // Honoured again: the next request goes through.
      workers.setTunnels(grantFor(n2Agent));
      t.true(await answeredSoon(200, 'served once honoured'));
      // Retired while the workers hold sessions to it: those are dropped, and nothing is served.
      workers.setTunnels(grantFor(n2Agent, () => retired));
      t.true(await answeredSoon(502, 'refused once retired'));
    } finally {
      await workers.close();
      await n2Agent.close();
      server.close();
    }
  },
);

test.serial(
  'a renewed identity: the next session to another node presents the new certificate',
  async (t) => {
    const { server, port: backendPort } = await backend();
    const opened: string[] = [];
    const n2Agent = await nodeN2(backendPort, opened);
    const { workers } = ingressWorkers(RENEWING);
    const far = (taskId: string) => routeOnN2(`${taskId}.s.mesh`, taskId, backendPort);
    workers.setTunnels(grantFor(n2Agent));
    workers.setRoutes(new Map([far('t4'), far('t5')]), 7);
    await workers.start();
    try {
      // Connections of their own, so that both workers hold a session to n2.
      const before = await Promise.all(
        Array.from({ length: 20 }, () => get('t4.s.mesh', RENEWING)),
      );
      t.true(before.every((a) => a.status === 200));
      const renewed = await ca.identity({ nodeId: 'n1' });
      t.not(renewed.serial, n1.serial);
      workers.setTunnels(grantFor(n2Agent, undefined, renewed));
      // Each worker answers in the order it was told: once both answer, both hold the new grant.
      await workers.requests();
      // Another replica, so a new stream: it goes over a session made with the renewed certificate.
      t.is((await get('t5.s.mesh', RENEWING)).status, 200);
      t.true(opened.every((o) => !o.includes(' t4/') || o.includes(n1.serial)));
      t.deepEqual(
        opened.filter((o) => o.includes(' t5/')),
        [`n1 t5/80 ${renewed.serial} @7`],
      );
    } finally {
      await workers.close();
      await n2Agent.close();
      server.close();
    }
  },
);

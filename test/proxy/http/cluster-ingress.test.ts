import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as connectHttp2 } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { WebSocket } from 'ws';
import type { StatusResponse, TaskRow } from '../../../agent/control/api.js';
import { DEFAULT_LIVENESS } from '../../../mesh/transport/channel.js';
import { KEEP_ALIVE_MS } from '../../../proxy/http/pools.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../../helpers/docker.js';
import { filesHolding } from '../../helpers/files-holding.js';
import { handshakes, hostCertificate } from '../../helpers/host-certificate.js';
import { requestOnce } from '../../helpers/load.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodesSeenBy,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.34.0/24. Node 1 (zone b) runs nothing of the stack: every request to it
// is forwarded to node 2 (zone a) through the agents' mTLS. 127.0.34.77 is the test's client.
const HOSTS = ['127.0.34.1', '127.0.34.2'];
const CLIENT = '127.0.34.77';
const PORTS = { http: 18_034, https: 18_434 };
/** The agents' --http-timeout: shorter than the default, so an idle tunnel outlasts it soon. */
const HTTP_TIMEOUT_MS = 2000;
const ECHO = fileURLToPath(new URL('../../helpers/echo-server.js', import.meta.url));
const cluster = await LocalCluster.create('ingress');
let agents: AgentProcess[] = [];
let clusterId = '';
/** Each node's answer to a request sent as the deploy returned. */
let firstAnswers: string[] = [];

const SHOP = `
services:
  web:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    expose: ["8080"]
    stop_grace_period: 1s
    x-mesh:
      routes: [shop.test]
    deploy:
      replicas: 2
      placement: { constraints: [node.labels.zone == a] }
      restart_policy: { condition: any, delay: 10s }
  echo:
    command: ${JSON.stringify([process.execPath, ECHO])}
    ports: ["9000"]
    x-mesh:
      runtime: process
      routes: [{ host: shop.test, path: /api, strip_prefix: true }]
    deploy:
      placement: { constraints: [node.labels.zone == a] }
  idle:
    image: ${TEST_IMAGE}
    expose: ["80"]
    deploy: { replicas: 0 }
`;

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A request to a node's ingress with this Host, from the test's own client address. */
function get(host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: HOSTS[0],
        port: PORTS.http,
        path,
        headers: { ...headers, host },
        localAddress: CLIENT,
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += String(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test.before(async () => {
  if ('skip' in engine) return;
  // Already there (a run killed before its cleanup) is fine: the address is this file's own.
  await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  const nodeFlags = [
    '--dns-upstream',
    'none',
    '--http-port',
    String(PORTS.http),
    '--https-port',
    String(PORTS.https),
    '--http-timeout',
    `${HTTP_TIMEOUT_MS}ms`,
  ];
  agents = await cluster.start([HOSTS[0] as string], 'ing', ['--label', 'zone=b'], nodeFlags);
  const seed = agents[0] as AgentProcess;
  const token = (await meshOn(seed, 'token')).stdout.trim();
  agents.push(
    cluster.spawn('ing2', [
      'join',
      token,
      '--advertise',
      HOSTS[1] as string,
      '--label',
      'zone=a',
      ...nodeFlags,
    ]),
  );
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await eventually(
    async () =>
      (await nodesSeenBy(seed.dataDir)).filter((n) => n.status === 'alive' && n.recorded).length ===
      2,
    { what: 'two nodes alive and recorded', timeoutMs: 30_000, intervalMs: 200 },
  );
  const deployed = await meshOn(seed, 'deploy', '-c', cluster.file('shop.yml', SHOP), 'shop');
  if (deployed.code !== 0) throw new Error(deployed.stderr);
  // Each node's ingress workers start with its first route, while the deploy runs: it returns
  // once every node says they listen, so the first request to each is answered, not refused.
  firstAnswers = await Promise.all(
    HOSTS.map((host) =>
      requestOnce({ host, port: PORTS.http, hostHeader: 'shop.test', localAddress: CLIENT }).then(
        ({ status }) => `${host} ${status}`,
        (error: Error) => `${host} ${error.message}`,
      ),
    ),
  );
});

test.after.always(async () => {
  await cluster.close();
  // Never added (the engine was missing) is fine too.
  await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest(
  "a deploy returns once every node's ingress listens: the first request to each is answered",
  async (t) => {
    t.deepEqual(
      firstAnswers,
      HOSTS.map((host) => `${host} 200`),
    );
    const nodes = await meshJson<Array<{ id: string; ingress?: string }>>(
      agents[0] as AgentProcess,
      'node',
      'ls',
    );
    t.deepEqual(
      nodes.map((n) => n.ingress),
      ['listening', 'listening'],
    );
  },
);

dockerTest(
  'a request to a node that runs no replica reaches the service by its Host',
  async (t) => {
    const byName = await eventually(
      async () => {
        const answer = await get('web.shop.mesh', '/');
        return answer.status === 200 && answer;
      },
      { what: 'web through node 1', timeoutMs: 20_000, intervalMs: 200 },
    );
    t.is(byName ? byName.body : undefined, 'mesh test page\n');
    const declared = await get('shop.test', '/');
    t.is(declared.body, 'mesh test page\n', 'a host declared under x-mesh routes');
    // What node 1's ingress saw, as `mesh inspect` shows it.
    const inspected = await meshJson<{
      services: Array<{ id: string; http: { requests: number; statuses: { '2xx': number } } }>;
    }>(agents[0] as AgentProcess, 'inspect', 'shop.web');
    const seen = inspected.services.find((s) => s.id === 'shop.web')?.http;
    t.true((seen?.statuses['2xx'] ?? 0) >= 2, `2xx answers counted: ${JSON.stringify(seen)}`);
  },
);

dockerTest(
  'a path prefix goes to its service, stripped; the client address and scheme are forwarded',
  async (t) => {
    const answer = await get('shop.test', '/api/headers?x=1', { 'x-forwarded-for': '203.0.113.9' });
    t.is(answer.status, 200);
    const seen = JSON.parse(answer.body) as { path: string; headers: Record<string, string> };
    t.is(seen.path, '/headers?x=1', 'the prefix is taken off');
    t.is(
      seen.headers['x-forwarded-for'],
      CLIENT,
      "an untrusted client's own X-Forwarded-For is replaced",
    );
    t.is(seen.headers['x-forwarded-proto'], 'http');
    t.is(seen.headers['x-forwarded-host'], 'shop.test');
    t.is(seen.headers.host, 'shop.test', 'the Host is passed on as asked');
  },
);

dockerTest(
  'a WebSocket echoes through the ingress, also after idling past every proxy timeout',
  async (t) => {
    const ws = new WebSocket(`ws://${HOSTS[0]}:${PORTS.http}/api/ws`, {
      headers: { host: 'shop.test' },
      localAddress: CLIENT,
    });
    t.teardown(() => ws.terminate());
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const echo = (text: string) =>
      new Promise<string>((resolve) => {
        ws.once('message', (data) => resolve(String(data)));
        ws.send(text);
      });
    t.is(await echo('first'), 'first');
    // The idle time is what is under test: longer than every timer that could cut the tunnel —
    // the agents' --http-timeout, the pools' keep-alive, the transport's silence limit, and
    // Node's own HTTP keep-alive (5 s).
    await sleep(Math.max(HTTP_TIMEOUT_MS, KEEP_ALIVE_MS, DEFAULT_LIVENESS.silenceMs, 5000) + 1500);
    t.is(await echo('after idling'), 'after idling');
  },
);

dockerTest('404 for an unknown host, 503 for a service with no ready replica', async (t) => {
  const unknown = await get('nothing.example', '/');
  t.is(unknown.status, 404);
  t.regex(unknown.body, /no service answers for host "nothing\.example"/);
  const idle = await get('idle.shop.mesh', '/');
  t.is(idle.status, 503);
  t.regex(idle.body, /service shop\.idle has no ready replica/);
  t.is(idle.headers['retry-after'], '1');
});

dockerTest('HTTPS with a certificate chosen by SNI, added with mesh cert add', async (t) => {
  const { certFile, keyFile } = await hostCertificate(cluster.root, 'shop.test');
  const wrong = await meshOn(
    agents[0] as AgentProcess,
    'cert',
    'add',
    'other.test',
    certFile,
    keyFile,
  );
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /does not cover other\.test/);
  const onWorker = await meshOn(
    agents[1] as AgentProcess,
    'cert',
    'add',
    'shop.test',
    certFile,
    keyFile,
  );
  t.not(onWorker.code, 0, 'a worker adds no certificate');
  t.regex(onWorker.stderr, /manager/);
  const added = await meshOn(
    agents[0] as AgentProcess,
    'cert',
    'add',
    'shop.test',
    certFile,
    keyFile,
  );
  t.is(added.code, 0, added.stderr);
  const listed = await meshJson<Array<{ host: string; keyPem?: string }>>(
    agents[1] as AgentProcess,
    'cert',
    'ls',
  );
  t.deepEqual(
    listed.map((c) => c.host),
    ['shop.test'],
  );
  t.false(
    listed.some((c) => 'keyPem' in c),
    'a listing never shows a key',
  );
  const ca = readFileSync(certFile);
  const body = await eventually(
    () =>
      new Promise<string | undefined>((resolve) => {
        const req = httpsRequest(
          {
            host: HOSTS[0],
            port: PORTS.https,
            path: '/',
            servername: 'shop.test',
            headers: { host: 'shop.test' },
            ca,
            localAddress: CLIENT,
          },
          (res) => {
            let text = '';
            res.on('data', (chunk) => {
              text += String(chunk);
            });
            res.on('end', () => resolve(res.statusCode === 200 ? text : undefined));
          },
        );
        req.on('error', () => resolve(undefined));
        req.end();
      }),
    { what: 'an HTTPS answer for shop.test', timeoutMs: 10_000, intervalMs: 200 },
  );
  t.is(body, 'mesh test page\n');
  // One TLS port, both protocols: a client offering h2 is answered in HTTP/2, and a client that
  // sends garbage in HTTP/2 loses its own connection only.
  const tlsTo = { host: HOSTS[0], port: PORTS.https, servername: 'shop.test', ca };
  const broken = connectTls({
    ...tlsTo,
    ALPNProtocols: ['h2'],
    localAddress: CLIENT,
  } as ConnectionOptions);
  broken.on('error', () => undefined);
  await new Promise((resolve) => broken.once('secureConnect', resolve));
  t.is(broken.alpnProtocol, 'h2');
  const session = connectHttp2(`https://shop.test:${PORTS.https}`, {
    createConnection: () =>
      connectTls({ ...tlsTo, ALPNProtocols: ['h2'], localAddress: CLIENT } as ConnectionOptions),
  });
  t.teardown(() => session.close());
  const h2Get = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      let text = '';
      let status = 0;
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', (chunk) => {
        text += String(chunk);
      });
      stream.on('end', () => resolve({ status, body: text }));
      stream.on('error', reject);
    });
  t.deepEqual(await h2Get(), { status: 200, body: 'mesh test page\n' });
  broken.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nnot a frame, not even close to one\r\n');
  broken.resume();
  await new Promise((resolve) => broken.once('close', resolve));
  const [again, alsoAgain] = await Promise.all([h2Get(), h2Get()]);
  t.is(again.status, 200);
  t.is(alsoAgain.body, 'mesh test page\n');
  // The worker serves it too: a voter opened the key for it.
  t.true(
    await eventually(() => handshakes(HOSTS[1] as string, PORTS.https, 'shop.test', ca), {
      what: 'the worker serving shop.test',
      timeoutMs: 10_000,
      intervalMs: 200,
    }),
  );
  // Sealed at rest: the key is in no file of either node (log, snapshot, anything else).
  const keyBody = readFileSync(keyFile, 'utf8').split('\n')[1] as string;
  for (const agent of agents)
    t.deepEqual(
      await filesHolding(agent.dataDir, keyBody),
      [],
      `the key on disk on ${agent.dataDir}`,
    );
});

dockerTest(
  'a replica killed under load: no request fails once the proxy retried',
  async (t, docker) => {
    const [victim] = await docker.listContainers({
      filters: { label: [`mesh.cluster=${clusterId}`, 'mesh.service=web'], status: ['running'] },
    });
    const results: Array<{ at: number; status: number; body: string }> = [];
    let killedAt = 0;
    // Bounded: 300 sequential requests, the kill after the 50th.
    for (let i = 0; i < 300; i++) {
      if (i === 50) {
        await docker.getContainer(victim?.Id ?? '').kill();
        killedAt = Date.now();
      }
      const answer = await get('shop.test', '/').catch((error: Error) => ({
        status: 0,
        body: error.message,
      }));
      results.push({
        at: Date.now(),
        status: answer.status,
        body: answer.status === 200 ? '' : answer.body,
      });
    }
    const failed = results.filter((r) => r.status !== 200);
    t.deepEqual(failed, [], `failed requests after the kill at ${killedAt}`);
    const tasks = await meshJson<TaskRow[]>(agents[0] as AgentProcess, 'ps', 'web');
    t.true(
      tasks.some((task) => task.state !== 'running'),
      'the killed replica is known to be down',
    );
  },
);

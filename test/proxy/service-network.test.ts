import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import test from 'ava';
import DNS from 'dns2';
import type {
  RoutesResponse,
  ServiceRow,
  StatusResponse,
  TaskRow,
} from '../../agent/control/api.js';
import { dnsAddress } from '../../mesh/api/network.js';
import { containerOf, httpGet, removeLabelled, sh } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import {
  type AgentProcess,
  LocalCluster,
  meshJson,
  meshOn,
  nodeIdOf,
  nodesRecorded,
  testRanges,
} from '../helpers/local-cluster.js';
import { bodyOnceAnswering, eventually } from '../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.31.0/24. Node 1 (zone b) runs the client; nodes 2 and 3 (zone a) run
// web and db, so every request from the client crosses nodes through the agents' mTLS.
const HOSTS = ['127.0.31.1', '127.0.31.2', '127.0.31.3'];
const RANGES = testRanges(HOSTS[0] as string);
const PUBLISHED = 18_031;
/** A resolver the test runs: node 3 forwards names outside mesh. to it. */
const UPSTREAM = { host: '127.0.31.53', port: 5331 };
const upstream = DNS.createUDPServer((request, send) => {
  const [question] = request.questions;
  // slow.example is never answered: the agent must give up with SERVFAIL, not hang.
  if (!question || question.name === 'slow.example') return;
  const response = DNS.Packet.createResponseFromRequest(request);
  response.answers.push({
    name: question.name,
    type: DNS.Packet.TYPE.A,
    class: DNS.Packet.CLASS.IN,
    ttl: 60,
    address: '127.0.31.99',
  } as DNS.Packet.Resource);
  void send(response);
});
const cluster = await LocalCluster.create('network');
let agents: AgentProcess[] = [];
let clusterId = '';

const APP = `
services:
  web:
    image: ${TEST_IMAGE}
    command: httpd -f -p 8080 -h /www
    ports: ["${PUBLISHED}:8080"]
    networks: [default, shared]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement: { constraints: [node.labels.zone == a], max_replicas_per_node: 1 }
      restart_policy: { condition: any, delay: 5s }
  db:
    image: ${TEST_IMAGE}
    command: nc -ll -p 5432 -e cat
    expose: ["5432"]
    stop_grace_period: 1s
    deploy:
      placement: { constraints: [node.labels.zone == a] }
  client:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    deploy:
      placement: { constraints: [node.labels.zone == b] }
networks:
  shared:
    external: true
    name: net-shared
`;

/**
 * Another stack: one service on its own default network only, one on the shared network, and one
 * on both (its traffic leaves by one of them, whichever the engine made its default route).
 */
const OTHER = `
services:
  outsider:
    image: ${TEST_IMAGE}
    command: nc -ll -p 7000 -e cat
    expose: ["7000"]
    stop_grace_period: 1s
  friend:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    networks: [shared]
  both:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    networks: [default, shared]
networks:
  shared:
    external: true
    name: net-shared
`;

const running = (tasks: TaskRow[]) => tasks.length > 0 && tasks.every((t) => t.state === 'running');

test.before(async () => {
  if ('skip' in engine) return;
  await upstream.listen(UPSTREAM.port, UPSTREAM.host);
  // The service range must be unreachable before anything sends to it: a packet for an address
  // there that no agent made local would otherwise leave the machine. The agents route it so
  // themselves; the test checks it below before the first request.
  agents = await cluster.start([HOSTS[0] as string], 'net', ['--label', 'zone=b']);
  const seed = agents[0] as AgentProcess;
  const token = (await meshOn(seed, 'token')).stdout.trim();
  for (const [i, host] of HOSTS.slice(1).entries())
    agents.push(
      cluster.spawn(`net${i + 2}`, [
        'join',
        token,
        '--advertise',
        host,
        '--label',
        'zone=a',
        '--dns-upstream',
        i === 1 ? `${UPSTREAM.host}:${UPSTREAM.port}` : 'none',
      ]),
    );
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await nodesRecorded(seed, 3);
  const deployed = await meshOn(seed, 'deploy', '-c', cluster.file('app.yml', APP), 'app');
  if (deployed.code !== 0) throw new Error(deployed.stderr);
  const other = await meshOn(seed, 'deploy', '-c', cluster.file('other.yml', OTHER), 'other');
  if (other.code !== 0) throw new Error(other.stderr);
  for (const service of [
    'app.web',
    'app.db',
    'app.client',
    'other.outsider',
    'other.friend',
    'other.both',
  ])
    await eventually(async () => running(await meshJson<TaskRow[]>(seed, 'ps', service)), {
      what: `${service} running`,
      timeoutMs: 60_000,
      intervalMs: 250,
    });
});

test.after.always(async () => {
  upstream.close();
  await cluster.close();
  if (!('skip' in engine) && clusterId)
    await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

dockerTest(
  'the service range is routed unreachable and every service address is local',
  async (t) => {
    const { stdout: routes } = await run('ip', ['route', 'show', 'type', 'unreachable']);
    t.true(routes.includes(RANGES.serviceRange), `route for ${RANGES.serviceRange}: ${routes}`);
    const listed = await meshJson<
      Array<{ services: Array<{ id: string; address: string | null; dnsName: string }> }>
    >(agents[0] as AgentProcess, 'ls');
    const web = listed.flatMap((s) => s.services).find((s) => s.id === 'app.web');
    t.is(web?.dnsName, 'web.app.mesh');
    t.truthy(web?.address);
    const { stdout: lo } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lo']);
    t.true(lo.includes(`${web?.address}/32`), 'the service address is on lo');
  },
);

dockerTest(
  'a client on another node reaches web by short name, by full name, and db over TCP',
  async (t, docker) => {
    const client = await containerOf(docker, clusterId, 'client');
    const short = await eventually(
      async () => {
        const { out } = await sh(client, httpGet('web', 8080));
        return out.includes('mesh test page') && out;
      },
      { what: 'web answering the client by its short name', timeoutMs: 15_000, intervalMs: 250 },
    );
    t.regex(short as string, /^HTTP\/1\.[01] 200/);
    const full = await sh(client, httpGet('web.app.mesh', 8080));
    t.regex(full.out, /mesh test page/);
    const echo = await sh(client, 'echo ping-over-the-mesh | nc -w 3 db 5432');
    t.regex(echo.out, /ping-over-the-mesh/, 'db echoed the line back: a TCP round trip');
    // The routing table on the client's node sends both elsewhere: nothing of them runs on node 1.
    const routes = await meshJson<RoutesResponse>(agents[0] as AgentProcess, 'inspect', 'web');
    const [webRoute] = routes.services;
    t.is(webRoute?.endpoints.length, 2);
    t.true(webRoute?.endpoints.every((e) => !e.local));
  },
);

dockerTest('a published port answers on a node that runs no replica of it', async (t) => {
  // Node 1 runs only the client.
  const page = await bodyOnceAnswering(
    `http://${HOSTS[0]}:${PUBLISHED}/`,
    'published port on node 1',
  );
  t.is(page, 'mesh test page\n');
});

dockerTest(
  'a published port taken on a node is shown by mesh ls; the other nodes serve it',
  async (t) => {
    const taken = 18_032;
    const squatter = createServer((socket) => socket.end('squatter\n'));
    await new Promise<void>((resolve) => squatter.listen(taken, HOSTS[2], resolve));
    t.teardown(() => squatter.close());
    const stack = `services:\n  api:\n    image: ${TEST_IMAGE}\n    command: httpd -f -p 8080 -h /www\n    ports: ["${taken}:8080"]\n    stop_grace_period: 1s\n`;
    const deployed = await meshOn(
      agents[0] as AgentProcess,
      'deploy',
      '-c',
      cluster.file('taken.yml', stack),
      'taken',
    );
    t.is(deployed.code, 0, deployed.stderr);
    const third = await nodeIdOf(agents[2] as AgentProcess);
    const unserved = await eventually(
      async () => {
        const stacks = await meshJson<
          Array<{ services: Array<{ id: string; unserved?: ServiceRow['unserved'] }> }>
        >(agents[0] as AgentProcess, 'ls');
        return stacks.flatMap((s) => s.services).find((s) => s.id === 'taken.api')?.unserved?.[0];
      },
      { what: 'the taken port reported', timeoutMs: 20_000, intervalMs: 250 },
    );
    // The squatter is this test's own process: named, with its pid.
    t.like(unserved, { port: taken, node: third });
    t.regex(
      unserved?.reason ?? '',
      new RegExp(`^the port is taken on this node by \\S+ \\(pid ${process.pid}\\)$`),
    );
    const { stdout } = await meshOn(agents[1] as AgentProcess, 'ls');
    t.regex(stdout, new RegExp(`not served: ${taken} on ${third}`), 'mesh ls says so');
    t.regex(
      deployed.stderr,
      new RegExp(
        `mesh: warning: taken\\.api is not served on port ${taken} on ${third}: the port is taken`,
      ),
      'the deploy says so',
    );
    t.is(
      await bodyOnceAnswering(`http://${HOSTS[1]}:${taken}/`, 'the port on node 2'),
      'mesh test page\n',
    );
    await meshOn(agents[0] as AgentProcess, 'rm', 'taken');
  },
);

dockerTest('another stack reaches web only from a shared external network', async (t, docker) => {
  const outsider = await containerOf(docker, clusterId, 'outsider');
  const friend = await containerOf(docker, clusterId, 'friend');
  const resolved = await sh(outsider, 'nslookup web.app.mesh');
  t.regex(resolved.out, /Address:?\s+10\.250\./, 'the name resolves for everyone');
  const refused = await sh(outsider, httpGet('web.app.mesh', 8080));
  t.notRegex(refused.out, /mesh test page/, 'a service sharing no network is refused');
  const allowed = await sh(friend, httpGet('web.app.mesh', 8080));
  t.regex(allowed.out, /mesh test page/, 'a service on the shared external network gets through');
});

dockerTest(
  'a container on two networks reaches the services of both; one on either alone does not reach the other',
  async (t, docker) => {
    const both = await containerOf(docker, clusterId, 'both');
    const friend = await containerOf(docker, clusterId, 'friend');
    const routes = (await sh(both, 'ip route')).out;
    t.log(`both's routes: ${routes.replace(/\n/g, '; ')}`);
    const web = await sh(both, httpGet('web.app.mesh', 8080));
    t.regex(web.out, /mesh test page/, 'web, on the shared network only, is reached');
    const echo = await sh(both, 'echo over-two-networks | nc -w 3 outsider 7000');
    t.regex(echo.out, /over-two-networks/, 'outsider, on the default network only, is reached');
    const refused = await sh(friend, 'echo from-friend | nc -w 3 outsider 7000');
    t.notRegex(refused.out, /from-friend/, 'friend (shared only) is refused by outsider');
    const logged = () =>
      agents.some((agent) =>
        readFileSync(`${agent.dataDir}.log`, 'utf8')
          .split('\n')
          .some(
            (line) =>
              line.includes('connection refused: the source shares no network with the service') &&
              line.includes('"service":"other.outsider"') &&
              line.includes('"serviceNetworks":["other_default"]'),
          ),
      );
    await eventually(logged, {
      what: 'the refusal logged with both sides networks',
      timeoutMs: 5000,
    });
    t.pass();
  },
);

dockerTest(
  'a killed replica leaves every routing table and takes no new connection',
  async (t, docker) => {
    const client = await containerOf(docker, clusterId, 'client');
    const seed = agents[0] as AgentProcess;
    const before = await meshJson<RoutesResponse>(seed, 'inspect', 'web');
    const victim = before.services[0]?.endpoints[0];
    if (!victim) throw new Error('no web endpoint');
    const [container] = await docker.listContainers({
      filters: { label: [`mesh.task=${victim.task}`] },
    });
    await docker.getContainer(container?.Id ?? '').kill();
    const killedAt = Date.now();
    const left = await eventually(
      async () => {
        const now = await meshJson<RoutesResponse>(seed, 'inspect', 'web');
        return !now.services[0]?.endpoints.some((e) => e.task === victim.task) && Date.now();
      },
      {
        what: 'the killed replica leaving the table of the client node',
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
    t.log(`the killed replica left node 1's table ${Number(left) - killedAt} ms after the kill`);
    // Every request right after the kill is served (the other replica takes it, or a failed
    // connect moves on to it), and none reaches the killed one.
    for (let i = 0; i < 10; i++) {
      const { out } = await sh(client, httpGet('web', 8080, '/cgi-bin/whoami'));
      t.regex(out, /host=/, `request ${i} served`);
      t.false(out.includes(`host=${container?.Id.slice(0, 12)}`), 'not by the killed replica');
    }
  },
);

dockerTest(
  'DNS: NXDOMAIN, NODATA, SRV, and REFUSED from outside the cluster',
  async (t, docker) => {
    const dig = (...args: string[]) =>
      run('dig', [`@${HOSTS[0]}`, '+tries=1', '+time=2', ...args]).then((r) => r.stdout);
    t.regex(await dig('web.app.mesh', 'A'), /status: NOERROR[\s\S]*ANSWER: 1/);
    t.regex(await dig('nothing.app.mesh', 'A'), /status: NXDOMAIN[\s\S]*AUTHORITY: 1/);
    t.regex(await dig('web.app.mesh', 'AAAA'), /status: NOERROR[\s\S]*ANSWER: 0, AUTHORITY: 1/);
    t.regex(
      await dig('app.mesh', 'A'),
      /status: NOERROR[\s\S]*ANSWER: 0/,
      'an empty non-terminal is NODATA',
    );
    const srv = await dig('_8080._tcp.web.app.mesh', 'SRV', '+tcp');
    t.regex(srv, /SRV\s+0 0 8080 web\.app\.mesh\./);
    t.regex(srv, /ADDITIONAL: 1/);
    t.regex(await dig('example.org', 'A'), /status: SERVFAIL/, 'no upstream: SERVFAIL, not a hang');
    const viaUpstream = (...args: string[]) =>
      run('dig', [`@${HOSTS[2]}`, '+tries=1', '+time=4', ...args]).then((r) => r.stdout);
    t.regex(
      await viaUpstream('www.example', 'A'),
      /status: NOERROR[\s\S]*127\.0\.31\.99/,
      'forwarded upstream',
    );
    t.regex(
      await viaUpstream('slow.example', 'A'),
      /status: SERVFAIL/,
      'an upstream that never answers: SERVFAIL',
    );
    // A container on a bridge the cluster did not make is not one of the cluster's.
    const network = await docker.createNetwork({
      Name: `net-test-outside-${process.pid}`,
      IPAM: { Config: [{ Subnet: '10.239.31.0/24' }] },
    });
    t.teardown(() => network.remove());
    const { stdout } = await run('docker', [
      'run',
      '--rm',
      '--network',
      network.id,
      TEST_IMAGE,
      'nslookup',
      'web.app.mesh',
      dnsAddress(RANGES.serviceRange),
    ]).catch((error: { stdout: string }) => error);
    t.regex(stdout, /REFUSED|can't find|server can't/i, `refused: ${stdout}`);
  },
);

// Last: it stops node 1, which holds this host's data plane (it started first).
dockerTest(
  'when the agent serving the host data plane leaves, another agent of the host takes over',
  async (t) => {
    const [first, second] = agents as [AgentProcess, AgentProcess];
    t.regex(readFileSync(`${first.dataDir}.log`, 'utf8'), /serving the host data plane/);
    const web = (await meshJson<RoutesResponse>(second, 'inspect', 'web')).services[0];
    first.child.kill('SIGTERM');
    await first.exited;
    const { stdout: lo } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lo']);
    t.true(
      lo.includes(`${web?.address}/32`),
      'the addresses stay while other agents of the host run',
    );
    const page = await bodyOnceAnswering(
      `http://${web?.address}:8080/`,
      'web after the handover',
      20_000,
    );
    t.is(page, 'mesh test page\n');
  },
);

// After the handover: the two agents left stop together, as a host shutting down stops them.
dockerTest(
  'agents of one host stopped at once: none takes over while leaving, the last removes the addresses and routes',
  async (t) => {
    const rest = agents.slice(1) as AgentProcess[];
    const routes = () => run('ip', ['-o', 'route', 'show', 'type', 'unreachable']);
    t.true((await routes()).stdout.includes(RANGES.serviceRange), 'routed while they run');
    const signalledAt = Date.now();
    for (const agent of rest) agent.child.kill('SIGTERM');
    const codes = await Promise.all(
      rest.map((agent) => agent.exited.then((code) => [code, Date.now() - signalledAt])),
    );
    t.log(`exit after SIGTERM (ms): ${codes.map(([, ms]) => ms).join(', ')}`);
    t.deepEqual(
      codes.map(([code]) => code),
      [0, 0],
    );
    const { stdout: lo } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lo']);
    const prefix = RANGES.serviceRange.split('.').slice(0, 3).join('.');
    t.false(lo.includes(` ${prefix}.`), `no service address left on lo: ${lo}`);
    const left = (await routes()).stdout;
    for (const range of [RANGES.serviceRange, RANGES.bridgeRange])
      t.false(left.includes(range), `no unreachable route left for ${range}: ${left}`);
    for (const agent of rest)
      t.notRegex(
        readFileSync(`${agent.dataDir}.log`, 'utf8')
          .split('\n')
          .filter((line) => line.includes('"signal"') || line.includes('serving the host'))
          .map((line) => (line.includes('"signal"') ? 'S' : 'O'))
          .join(''),
        /SO/,
        'no agent took the host data plane over after its signal',
      );
  },
);

/**
 * UDP through the mesh, with a real DNS server (dnsmasq, in an image built from this machine's
 * Debian package by test/images/build-debian-apps.sh) and a WireGuard-like peer (a process task
 * that echoes and sends keepalives of its own, as a WireGuard peer does). Both run on node b; the
 * clients are on node a, so their datagrams cross nodes through the agents' mTLS. Loopback block
 * 127.0.68.0/24.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { RoutesResponse, StatusResponse, TaskRow } from '../../agent/control/api.js';
import { containerOf, removeLabelled, sh } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import {
  type AgentProcess,
  checkUnreachable,
  deployStack,
  LocalCluster,
  meshJson,
  meshOn,
  nodesRecorded,
  testRanges,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const HOSTS = ['127.0.68.1', '127.0.68.2'];
const RANGES = testRanges(HOSTS[0] as string);
const DNS_PORT = 18_068;
const WG_PORT = 18_069;
const DNS_IMAGE = 'mesh-test/dnsmasq:latest';
/** The flows' idle timeout on both agents: the WireGuard-like flow must outlive it. */
const UDP_TIMEOUT_MS = 1000;

// A WireGuard peer answers handshakes and, once it knows its peer, sends keepalives unasked.
const PEER = `
const socket = require('node:dgram').createSocket('udp4');
let peer;
socket.on('message', (m, from) => {
  peer = from;
  socket.send('echo:' + m, from.port, from.address);
});
setInterval(() => peer && socket.send('keepalive', peer.port, peer.address), 200);
socket.bind(Number(process.env.MESH_PORT_51820), process.env.MESH_HOST);
`;

const APP = `
services:
  dns:
    image: ${DNS_IMAGE}
    command: ["--host-record=host.example.test,192.0.2.7"]
    ports: ["${DNS_PORT}:53/udp"]
    stop_grace_period: 1s
    deploy: { placement: { constraints: [node.labels.side == b] } }
  wg:
    command: ${JSON.stringify([process.execPath, '-e', PEER])}
    ports: ["${WG_PORT}:51820/udp"]
    x-mesh: { runtime: process }
    deploy: { placement: { constraints: [node.labels.side == b] } }
  client:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    deploy: { placement: { constraints: [node.labels.side == a] } }
`;
// Another stack's container: it shares no network with dns.
const STRANGER = `
services:
  outsider:
    image: ${TEST_IMAGE}
    command: sleep 100000
    stop_grace_period: 1s
    deploy: { placement: { constraints: [node.labels.side == a] } }
`;

const cluster = await LocalCluster.create('udp');
let agents: AgentProcess[] = [];
let clusterId = '';

test.before(async () => {
  if ('skip' in engine) return;
  await run('bash', ['test/images/build-debian-apps.sh', 'dnsmasq']);
  const timeout = ['--udp-timeout', `${UDP_TIMEOUT_MS}ms`];
  const [a] = await cluster.start([HOSTS[0] as string], 'udp', ['--label', 'side=a', ...timeout]);
  const seed = a as AgentProcess;
  const token = (await meshOn(seed, 'token')).stdout.trim();
  const b = cluster.spawn('udp2', [
    'join',
    token,
    '--advertise',
    HOSTS[1] as string,
    '--label',
    'side=b',
    '--dns-upstream',
    'none',
    ...timeout,
  ]);
  agents = [seed, b];
  clusterId = (await meshJson<StatusResponse>(seed, 'status')).clusterId;
  await nodesRecorded(seed, 2);
  // Nothing may send to the service range before it is routed unreachable here.
  await checkUnreachable(RANGES.serviceRange);
  await deployStack(cluster, seed, 'udp', APP);
  await deployStack(cluster, seed, 'stranger', STRANGER);
  await eventually(
    async () => {
      const tasks = [
        ...(await meshJson<TaskRow[]>(seed, 'ps', 'udp')),
        ...(await meshJson<TaskRow[]>(seed, 'ps', 'stranger')),
      ];
      return tasks.length === 4 && tasks.every((task) => task.state === 'running' && task.ready);
    },
    { what: 'four tasks running and ready', timeoutMs: 60_000, intervalMs: 250 },
  );
});

test.after.always(async () => {
  await cluster.close();
  if ('skip' in engine) return;
  if (clusterId) await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
});

/** dig's short answer for the name from the server, or its error text. */
async function dig(server: string, port: number, name: string): Promise<string> {
  const { stdout } = await run(
    'dig',
    ['+short', '+time=2', '+tries=1', '-p', String(port), `@${server}`, name],
    { timeout: 10_000 },
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? 'failed' }));
  return stdout.trim();
}

dockerTest('a DNS server behind a published UDP port answers through every node', async (t) => {
  // Node a holds no replica: its datagrams cross to node b's dnsmasq and back.
  for (const node of HOSTS)
    t.is(
      await eventually(async () => (await dig(node, DNS_PORT, 'host.example.test')) || undefined, {
        what: `an answer through ${node}`,
        timeoutMs: 15_000,
        intervalMs: 250,
      }),
      '192.0.2.7',
      `through ${node}`,
    );
  const routes = await meshJson<RoutesResponse>(agents[0] as AgentProcess, 'inspect', 'udp.dns');
  t.deepEqual(routes.notRouted, []);
  const [dns] = routes.services;
  t.like(dns, { udpPorts: [53], published: [`${DNS_PORT}/udp`] });
  t.deepEqual(
    dns?.endpoints.map((e) => [e.udpPorts, e.local]),
    [[[53], false]],
  );
  const shown = await meshOn(agents[0] as AgentProcess, 'inspect', 'udp.dns');
  t.regex(
    shown.stdout,
    new RegExp(`53/udp \\(declared\\); published on every node: ${DNS_PORT}/udp`),
  );
});

dockerTest('a container asks the DNS server by its service name, over UDP', async (t, docker) => {
  const client = await containerOf(docker, clusterId, 'client');
  const answer = await eventually(
    async () => {
      const { out } = await sh(client, 'nslookup host.example.test dns');
      return out.includes('192.0.2.7') ? out : undefined;
    },
    { what: 'nslookup through the service address', timeoutMs: 15_000, intervalMs: 500 },
  );
  t.regex(answer ?? '', /Address:?\s+192\.0\.2\.7/);
});

dockerTest(
  'a container of another stack gets no answer: it shares no network',
  async (t, docker) => {
    const outsider = await containerOf(docker, clusterId, 'outsider');
    const routes = await meshJson<RoutesResponse>(agents[0] as AgentProcess, 'inspect', 'udp.dns');
    const address = routes.services.find((s) => s.id === 'udp.dns')?.address;
    t.truthy(address);
    const { out } = await sh(outsider, `timeout 3 nslookup host.example.test ${address}`);
    t.false(out.includes('192.0.2.7'), out);
    // Refused where it arrived, and said so (the host's service addresses are on node a's agent
    // or node b's: either may hold them).
    const logs = await eventually(
      () => {
        const text = HOSTS.map((_, i) =>
          readFileSync(join(cluster.root, `udp${i + 1}.log`), 'utf8'),
        ).join('');
        return text.includes('"protocol":"udp"') ? text : undefined;
      },
      { what: 'the refusal logged', timeoutMs: 10_000, intervalMs: 200 },
    );
    t.regex(logs ?? '', /connection refused: the source shares no network with the service/);
  },
);

dockerTest(
  'a WireGuard-like peer keeps its flow past the idle timeout with its keepalives',
  async (t) => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.68.10', resolve));
    t.teardown(() => socket.close());
    const received: Array<{ text: string; from: string; at: number }> = [];
    socket.on('message', (payload, from) =>
      received.push({
        text: String(payload),
        from: `${from.address}:${from.port}`,
        at: Date.now(),
      }),
    );
    const node = HOSTS[0] as string;
    await eventually(
      () => {
        socket.send('handshake', WG_PORT, node);
        return received.some((r) => r.text === 'echo:handshake');
      },
      { what: 'the handshake answered through node a', timeoutMs: 15_000, intervalMs: 500 },
    );
    t.true(
      received.every((r) => r.from === `${node}:${WG_PORT}`),
      'every answer from the address sent to',
    );
    // The client goes quiet: the peer's keepalives alone hold the flow past its idle timeout.
    const quietFrom = Date.now();
    const late = await eventually(
      () => received.find((r) => r.text === 'keepalive' && r.at > quietFrom + 3 * UDP_TIMEOUT_MS),
      { what: 'a keepalive three idle timeouts after the client went quiet', timeoutMs: 10_000 },
    );
    t.is(late?.from, `${node}:${WG_PORT}`);
    socket.send('data', WG_PORT, node);
    await eventually(() => received.some((r) => r.text === 'echo:data'), {
      what: 'the same flow answering',
      timeoutMs: 5000,
    });
  },
);

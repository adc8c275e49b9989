/**
 * /metrics as Prometheus sees it: a real Prometheus (Debian's package) scrapes both agents of a
 * cluster, and PromQL through its HTTP API finds the ready replicas of a service and the requests
 * its ingress answered; promtool checks each node's exposition. Two agents and Prometheus on
 * 127.0.76.0/24; the service is a process stack, so no engine is needed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { DEFAULT_METRICS_PORT } from '../../agent/datadir.js';
import { type AgentProcess, deployStack, LocalCluster, mesh } from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const HOSTS = ['127.0.76.1', '127.0.76.2'];
const PROMETHEUS = '127.0.76.9:19076';
const HTTP_PORT = 18_076;
/** Requests sent through the first node's ingress: a bounded load, counted exactly. */
const REQUESTS = 30;

const cluster = await LocalCluster.create('metrics');
let prometheus: ChildProcess | undefined;
test.after.always(async () => {
  prometheus?.kill('SIGKILL');
  if (prometheus && prometheus.exitCode === null) await once(prometheus, 'exit');
  await cluster.close();
});

const SERVER =
  "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, process.env.MESH_HOST)";
const STACK = `services:
  web:
    command: ${JSON.stringify([process.execPath, '-e', SERVER])}
    ports: ["8080"]
    deploy: { replicas: 2 }
    x-mesh: { runtime: process }
`;

let agents: AgentProcess[] = [];

test.before(async () => {
  agents = await cluster.start(
    HOSTS,
    'mon',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  await deployStack(cluster, agents[0] as AgentProcess, 'mon', STACK);
});

/** A GET through the first node's HTTP ingress, for the service by its name. */
function throughIngress(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: HOSTS[0],
        port: HTTP_PORT,
        path: '/',
        headers: { host: 'web.mon.mesh' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function exposition(host: string): Promise<string> {
  const answer = await fetch(`http://${host}:${DEFAULT_METRICS_PORT}/metrics`);
  return answer.text();
}

/** The one value of an instant PromQL query, or undefined while it has none. */
async function query(promql: string): Promise<number | undefined> {
  const answer = await fetch(
    `http://${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(promql)}`,
  ).catch(() => undefined); // not listening yet
  if (!answer?.ok) return undefined;
  const body = (await answer.json()) as { data: { result: Array<{ value: [number, string] }> } };
  const [first] = body.data.result;
  return first ? Number(first.value[1]) : undefined;
}

/** The query's value once it is `expected`, or the last one seen when it never gets there. */
async function settled(promql: string, expected: number): Promise<number | undefined> {
  let last: number | undefined;
  await eventually(
    async () => {
      last = await query(promql);
      return last === expected;
    },
    { what: promql, timeoutMs: 30_000, intervalMs: 500 },
  ).catch(() => undefined); // the assertion that follows says what was seen
  return last;
}

test.serial(
  'every node serves /metrics that promtool accepts, and nothing else there',
  async (t) => {
    // One name found and one not, asked of the first node's DNS: each answer is counted.
    await run('dig', [`@${HOSTS[0]}`, '+short', '+tries=1', 'web.mon.mesh', 'A']);
    await run('dig', [`@${HOSTS[0]}`, '+short', '+tries=1', 'nothing.mon.mesh', 'A']);
    const first = await exposition(HOSTS[0] as string);
    t.regex(first, /^mesh_dns_answers_total\{type="A",rcode="NOERROR"\} 1$/m);
    t.regex(first, /^mesh_dns_answers_total\{type="A",rcode="NXDOMAIN"\} 1$/m);
    for (const host of HOSTS) {
      const text = await exposition(host);
      t.regex(text, /^mesh_raft_term \d+$/m, host);
      t.regex(text, /^mesh_members\{state="alive"\} 2$/m, host);
      t.regex(text, /^process_resident_memory_bytes \d+/m, host);
      const checked = spawn('promtool', ['check', 'metrics']);
      checked.stdin.end(text);
      let said = '';
      checked.stderr.on('data', (chunk) => {
        said += String(chunk);
      });
      const [code] = (await once(checked, 'exit')) as [number];
      t.is(code, 0, `${host}: ${said}`);
    }
    const other = await fetch(`http://${HOSTS[0]}:${DEFAULT_METRICS_PORT}/`);
    t.is(other.status, 404);
  },
);

test.serial(
  'Prometheus scrapes both nodes: ready replicas and ingress requests by PromQL',
  async (t) => {
    await eventually(async () => (await throughIngress()) === 200, {
      what: 'the service answering through the ingress',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    for (let i = 1; i < REQUESTS; i++) t.is(await throughIngress(), 200);
    const config = cluster.file(
      'prometheus.yml',
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: mesh
    static_configs:
      - targets: [${HOSTS.map((h) => `"${h}:${DEFAULT_METRICS_PORT}"`).join(', ')}]
`,
    );
    await run('promtool', ['check', 'config', config]);
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(cluster.root, 'prometheus')}`,
        `--web.listen-address=${PROMETHEUS}`,
      ],
      { stdio: 'ignore' },
    );
    t.is(await settled('count(up{job="mesh"} == 1)', 2), 2, 'both agents scraped');
    t.is(await settled('sum(mesh_service_replicas{service="mon.web",state="ready"})', 2), 2);
    t.is(await settled('sum(mesh_http_requests_total{service="mon.web"})', REQUESTS), REQUESTS);
    t.is(await query('sum(mesh_raft_leader)'), 1, 'one leader');
  },
);

test('a --metrics-addr taken is refused before the node is made', async (t) => {
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(19_176, '127.0.76.50', resolve));
  t.teardown(() => squatter.close());
  const dataDir = join(cluster.root, 'taken');
  const refused = await mesh(
    'init',
    '--advertise',
    '127.0.76.50',
    '--metrics-addr',
    '127.0.76.50:19176',
    '--data-dir',
    dataDir,
  );
  t.is(refused.code, 1);
  t.is(
    refused.stderr,
    'mesh: port 19176 on 127.0.76.50 is taken (another mesh agent?); choose one with --metrics-addr\n',
  );
  t.false(existsSync(join(dataDir, 'cluster.json')), 'no node made');
});

test('--metrics-addr takes HOST:PORT or none, and says so otherwise', async (t) => {
  const refused = await mesh(
    'init',
    '--metrics-addr',
    'localhost',
    '--data-dir',
    join(cluster.root, 'never'),
  );
  t.is(refused.code, 2);
  t.is(
    refused.stderr,
    'mesh: --metrics-addr: "localhost" is not HOST:PORT (an IP address) or none\n',
  );
});

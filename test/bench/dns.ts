/**
 * The mesh DNS against dnsmasq serving the same records, side by side in one run: dnsperf (Debian's
 * package, installed when missing) sends the same query file (A, SRV, NODATA and NXDOMAIN
 * questions of the zone) to each for the same time. Everything stays on 127.0.40.0/24.
 *
 *   npm run bench:dns [-- --seconds 10] [-- --json]
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { StackRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { ensureTool, note, option, report, until } from './harness.js';

const run = promisify(execFile);
const MESH = '127.0.40.1';
const DNSMASQ = '127.0.40.2';
const PORT = 5340;
const SERVICES = ['web', 'api', 'db', 'cache', 'queue', 'search', 'auth', 'mail'];

interface Result {
  qps: number;
  lost: number;
}

/** dnsperf for a fixed time against one server; its completed queries per second and losses. */
async function dnsperf(server: string, queries: string, seconds: number): Promise<Result> {
  const { stdout } = await run(
    'dnsperf',
    [
      '-s',
      server,
      '-p',
      String(PORT),
      '-d',
      queries,
      '-l',
      String(seconds),
      '-c',
      '4',
      '-q',
      '64',
      '-t',
      '2',
    ],
    { timeout: (seconds + 30) * 1000 },
  );
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(qps)) throw new Error(`unreadable dnsperf output:\n${stdout}`);
  return { qps: Math.round(qps), lost };
}

async function main(): Promise<void> {
  const seconds = option('seconds', 10);
  await ensureTool('dnsperf', 'dnsperf');
  await ensureTool('dnsmasq', 'dnsmasq-base');
  const cluster = await LocalCluster.create('bench-dns');
  let dnsmasq: ReturnType<typeof spawn> | undefined;
  try {
    const [agent] = await cluster.start(
      [MESH],
      'dns',
      [],
      ['--dns-port', String(PORT), '--dns-upstream', 'none'],
    );
    if (!agent) throw new Error('no agent');
    const stack = SERVICES.map(
      (name) =>
        `  ${name}:\n    command: sleep 1000\n    expose: ["80", "443"]\n    x-mesh: { runtime: process }\n    deploy: { replicas: 0 }\n`,
    ).join('');
    const deployed = await meshOn(
      agent,
      'deploy',
      '--detach',
      '-c',
      cluster.file('bench.yml', `services:\n${stack}`),
      'bench',
    );
    if (deployed.code !== 0) throw new Error(deployed.stderr);
    const services = await until('every service with an address', 30_000, async () => {
      const [row] = (await callAgent(agent.dataDir, 'GET /v1/stacks', {})) as StackRow[];
      const rows = (row?.services ?? []).flatMap((s) => ('address' in s && s.address ? [s] : []));
      return rows.length === SERVICES.length ? rows : undefined;
    });

    // The same records for dnsmasq: an A and two SRV per service, NXDOMAIN for the rest of mesh.
    const records = services.flatMap((s) => [
      `--host-record=${s.dnsName},${s.address}`,
      `--srv-host=_80._tcp.${s.dnsName},${s.dnsName},80`,
      `--srv-host=_443._tcp.${s.dnsName},${s.dnsName},443`,
    ]);
    dnsmasq = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--bind-interfaces',
        `--listen-address=${DNSMASQ}`,
        `--port=${PORT}`,
        '--local=/mesh/',
        '--cache-size=10000',
        '--user=root',
        ...records,
      ],
      { stdio: 'ignore' },
    );
    await until('dnsmasq answering', 10_000, async () => {
      const { stdout } = await run('dig', [
        `@${DNSMASQ}`,
        '-p',
        String(PORT),
        '+short',
        '+time=1',
        services[0]?.dnsName ?? '',
      ]);
      return stdout.trim() ? true : undefined;
    });

    const lines = services.flatMap((s) => [
      `${s.dnsName} A`,
      `${s.dnsName} A`,
      `_80._tcp.${s.dnsName} SRV`,
      `${s.dnsName} AAAA`,
      `missing-${s.dnsName} A`,
    ]);
    const queries = join(cluster.root, 'queries.txt');
    writeFileSync(queries, `${lines.join('\n')}\n`);
    note(`dnsperf, ${seconds} s each: dnsmasq at ${DNSMASQ}:${PORT}, mesh at ${MESH}:${PORT}`);
    const peer = await dnsperf(DNSMASQ, queries, seconds);
    const mesh = await dnsperf(MESH, queries, seconds);
    report({
      dnsmasq: peer,
      mesh,
      ratio: Math.round((mesh.qps / peer.qps) * 1000) / 1000,
      seconds,
      queries: lines.length,
    });
  } finally {
    dnsmasq?.kill();
    await cluster.close();
  }
}

await main();

/**
 * TCP routing through the mesh against HAProxy, side by side in one run: wrk (-t1 -c32, bounded
 * in time) against one HTTP backend reached directly, through HAProxy in TCP mode (one thread),
 * through a service address whose endpoint is on the same node (`mesh`), and through one whose
 * endpoint is on another node (`meshRemote`: the agents' mTLS in between). The backends are
 * keep-alive Node HTTP servers run as process tasks; everything stays on 127.0.41.0/24 and the
 * cluster's own service range. wrk and haproxy are Debian packages, installed when missing.
 *
 *   npm run bench:l4 [-- --seconds 10] [-- --json]
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { StackRow, TaskRow } from '../../agent/control-api.js';
import { callAgent } from '../../cli/control-client.js';
import { LocalCluster, meshOn } from '../helpers/local-cluster.js';
import { ensureTool, note, option, report, until } from './harness.js';

const run = promisify(execFile);
const HOSTS = ['127.0.41.1', '127.0.41.2'];
const HAPROXY = '127.0.41.3:18041';
const BACKEND = `require('node:http').createServer((q, s) => s.end('ok\\n')).listen(Number(process.env.PORT), process.env.MESH_HOST)`;

interface Result {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function millis(text: string | undefined): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text ?? '');
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

async function wrk(url: string, seconds: number): Promise<Result> {
  const { stdout } = await run('wrk', ['-t1', '-c32', `-d${seconds}s`, '--latency', url], {
    timeout: (seconds + 30) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const errors = /Socket errors: (.*)/.exec(stdout)?.[1];
  if (!Number.isFinite(rps)) throw new Error(`unreadable wrk output:\n${stdout}`);
  if (errors) note(`  ${url}: socket errors ${errors}`);
  return {
    rps: Math.round(rps),
    p50Ms: Math.round(millis(/50%\s+(\S+)/.exec(stdout)?.[1]) * 100) / 100,
    p99Ms: Math.round(millis(/99%\s+(\S+)/.exec(stdout)?.[1]) * 100) / 100,
  };
}

const stackFile = (side: string) =>
  `  ${side}:\n    command: ${JSON.stringify([process.execPath, '-e', BACKEND])}\n    ports: ["8080"]\n    x-mesh: { runtime: process }\n    deploy: { placement: { constraints: [node.labels.side == ${side}] } }\n`;

async function main(): Promise<void> {
  const seconds = option('seconds', 10);
  await ensureTool('wrk', 'wrk');
  await ensureTool('haproxy', 'haproxy');
  const cluster = await LocalCluster.create('bench-l4');
  let haproxy: ReturnType<typeof spawn> | undefined;
  try {
    const [first] = await cluster.start([HOSTS[0] as string], 'l4', ['--label', 'side=local']);
    if (!first) throw new Error('no agent');
    const token = (await meshOn(first, 'token')).stdout.trim();
    cluster.spawn('l42', [
      'join',
      token,
      '--advertise',
      HOSTS[1] as string,
      '--label',
      'side=remote',
      '--dns-upstream',
      'none',
    ]);
    const file = cluster.file('l4.yml', `services:\n${stackFile('local')}${stackFile('remote')}`);
    await until('both nodes able to take tasks', 30_000, async () => {
      const deployed = await meshOn(first, 'deploy', '-c', file, 'bench', '--timeout', '20s');
      return deployed.code === 0 ? true : undefined;
    });
    const [stack] = (await callAgent(first.dataDir, 'GET /v1/stacks', {})) as StackRow[];
    const address = (id: string) => {
      const row = stack?.services.find((s) => s.id === id);
      if (!row || !('address' in row) || !row.address) throw new Error(`${id} has no address`);
      return row.address;
    };
    const tasks = (await callAgent(first.dataDir, 'GET /v1/tasks', {
      service: 'bench.local',
    })) as TaskRow[];
    const direct = tasks[0]?.ports[0]?.split('->')[0];
    if (!direct) throw new Error('the local backend reports no port');
    const config = join(cluster.root, 'haproxy.cfg');
    writeFileSync(
      config,
      `global\n  nbthread 1\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 3s\n  timeout client 60s\n  timeout server 60s\nfrontend bench\n  bind ${HAPROXY}\n  default_backend web\nbackend web\n  server b1 ${direct}\n`,
    );
    haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: 'ignore' });
    const urls = {
      direct: `http://${direct}/`,
      haproxy: `http://${HAPROXY}/`,
      mesh: `http://${address('bench.local')}:8080/`,
      meshRemote: `http://${address('bench.remote')}:8080/`,
    };
    for (const url of Object.values(urls))
      await until(`${url} answering`, 20_000, () =>
        fetch(url).then(
          (r) => (r.ok ? true : undefined),
          () => undefined,
        ),
      );
    const results: Record<string, Result> = {};
    for (const [name, url] of Object.entries(urls)) {
      note(`wrk -t1 -c32 -d${seconds}s ${url} (${name})`);
      results[name] = await wrk(url, seconds);
    }
    const ratio = (a: Result | undefined, b: Result | undefined) =>
      Math.round(((a?.rps ?? 0) / (b?.rps ?? 1)) * 1000) / 1000;
    report({
      ...results,
      ratioVsHaproxy: ratio(results.mesh, results.haproxy),
      remoteRatioVsHaproxy: ratio(results.meshRemote, results.haproxy),
      seconds,
    });
  } finally {
    haproxy?.kill();
    await cluster.close();
  }
}

await main();

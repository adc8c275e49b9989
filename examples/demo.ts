/**
 * npm run demo: a local three-node cluster on 127.0.0.1-127.0.0.3, each agent a separate process
 * with its own data dir, serving the example stack (examples/stacks/demo.yml: a web service of
 * three replicas, published on every node, and a worker that reaches it by name). Without a reachable Docker Engine it deploys the same stack as
 * plain processes (examples/stacks/demo-process.yml) and says so. Ctrl-C removes the stack, makes
 * every agent leave gracefully, and removes the data.
 *
 *   npm run demo [-- --once] [-- --hosts A,B,C] [-- --service-range CIDR --bridge-range CIDR]
 *
 * --once: deploy, show, fetch pages, clean up. --hosts and the ranges put the cluster elsewhere
 * (another loopback block and ranges of its own: the interrupted-run test runs it beside others).
 */
import { rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import type { NodeRow } from '../agent/control/api.js';
import { pingEngine } from '../agent/runtime/docker.js';
import { DEFAULT_NETWORK_SETTINGS } from '../mesh/api/network.js';
import { pollUntil } from '../mesh/poll.js';
import { recordRanges, releaseRun, scratchDirectory } from './leftovers.js';
import {
  type AgentProcess,
  INTERRUPT_EXIT_CODES,
  killChildren,
  mesh,
  outliveClosedStdout,
  startCluster,
  stopAgents,
} from './local-cluster.js';
import { ensureTestImage } from './test-image.js';

/** The value after `--name` on the command line, if given. */
function flag(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const HOSTS = flag('hosts')?.split(',') ?? ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
/** The service and bridge ranges the cluster takes: as given, else mesh's defaults. */
const RANGES = {
  'service-range': flag('service-range') ?? DEFAULT_NETWORK_SETTINGS.serviceRange,
  'bridge-range': flag('bridge-range') ?? DEFAULT_NETWORK_SETTINGS.bridgeRange,
};
/** `mesh init` flags: the role label, and the ranges when given. */
const INIT_FLAGS = [
  '--label',
  'role=seed',
  ...(['service-range', 'bridge-range'] as const).flatMap((name) => {
    const value = flag(name);
    return value ? [`--${name}`, value] : [];
  }),
];
const source = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const say = (text: string) => process.stdout.write(`${text}\n`);

/** The stack file to deploy: Docker when an engine answers and the demo image can be built. */
async function chooseStack(): Promise<{ file: string; runtime: string }> {
  const docker = new Docker();
  try {
    await pingEngine(docker);
  } catch (error) {
    say(`mesh demo: no Docker Engine reachable (${(error as Error).message});`);
    say('  deploying the stack as plain processes instead (x-mesh runtime: process)');
    return { file: source('examples/stacks/demo-process.yml'), runtime: 'process' };
  }
  try {
    await ensureTestImage(docker);
  } catch (error) {
    say(`mesh demo: ${(error as Error).message}`);
    say('  deploying the stack as plain processes instead (x-mesh runtime: process)');
    return { file: source('examples/stacks/demo-process.yml'), runtime: 'process' };
  }
  return { file: source('examples/stacks/demo.yml'), runtime: 'docker' };
}

/** One GET, with this Host header (fetch cannot set one). */
function get(url: string, host?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += String(chunk);
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

/** The page at the URL, retrying while the listener comes up (an error says why, not a crash). */
async function pageOf(url: string, host?: string): Promise<string> {
  let failure = '';
  const page = await pollUntil(
    () =>
      get(url, host).catch((error: Error) => {
        failure = error.message;
        return undefined;
      }),
    { timeoutMs: 10_000, intervalMs: 200 },
  );
  return page ?? `(no answer: ${failure})`;
}

/** The worker's first lines about web, once it logged some (it asks every 5 s). */
async function workerLines(first: AgentProcess): Promise<string[]> {
  let lines: string[] = [];
  await pollUntil(
    async () => {
      const { stdout } = await mesh('logs', 'worker', '--data-dir', first.dataDir);
      lines = stdout.split('\n').filter((line) => line.includes('web answered'));
      return lines.length >= 2;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  );
  return lines.length > 0 ? lines.slice(0, 4) : ['(nothing yet: try mesh logs worker -f)'];
}

/** Waits (20 s at most) until gossip sees everyone and the leader has seated all as voters. */
async function allSeated(first: AgentProcess): Promise<void> {
  await pollUntil(
    async () => {
      const { stdout } = await mesh('node', 'ls', '--json', '--data-dir', first.dataDir);
      const nodes = stdout ? (JSON.parse(stdout) as NodeRow[]) : [];
      return (
        nodes.filter((n) => n.status === 'alive' && n.raft === 'voter').length === HOSTS.length
      );
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
}

async function main(): Promise<void> {
  const root = await scratchDirectory('demo');
  await recordRanges(root, Object.values(RANGES));
  const agents: AgentProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const first = agents[0];
      if (first) {
        say('\nmesh demo: removing the stack, then stopping the agents (each leaves gracefully)');
        await mesh('rm', 'demo', '--data-dir', first.dataDir);
      }
      await stopAgents(agents, 'SIGTERM');
      // Agents that leave remove what they made on the host; one killed while it started (a
      // Ctrl-C then) could not: the run's own release covers it, as every harness's does.
      await releaseRun(root);
      await rm(root, { recursive: true, force: true });
    })());
  // Ctrl-C (or SIGTERM, or its terminal closed: SIGHUP) at any moment, while the agents start or
  // the stack deploys too, cleans up the same way.
  outliveClosedStdout();
  let signalled = false;
  const interrupted = new Promise<number>((resolve) => {
    for (const [signal, code] of Object.entries(INTERRUPT_EXIT_CODES))
      process.once(signal, () => {
        signalled = true;
        resolve(code);
      });
  });
  void interrupted.then(async (code) => {
    await stop();
    killChildren();
    process.exit(code);
  });
  try {
    say(`mesh demo: starting 3 agents on ${HOSTS.join(', ')} (data and logs in ${root})`);
    agents.push(...(await startCluster(root, HOSTS, 'node', INIT_FLAGS)));
    const first = agents[0] as AgentProcess;
    await allSeated(first);
    const listing = (await mesh('node', 'ls', '--data-dir', first.dataDir)).stdout;
    say(`\n${listing}`);

    const stack = await chooseStack();
    say(`mesh demo: mesh deploy -c ${stack.file} demo`);
    const deployed = await mesh('deploy', '-c', stack.file, 'demo', '--data-dir', first.dataDir);
    process.stdout.write(deployed.stderr);
    if (deployed.code !== 0) throw new Error('the demo stack did not converge');
    say(`\n${(await mesh('ps', 'demo', '--data-dir', first.dataDir)).stdout}`);
    say(`${(await mesh('ls', '--data-dir', first.dataDir)).stdout}`);

    say('web is published on port 8080 of every node (the routing mesh), whichever nodes run it:');
    for (const host of HOSTS) {
      const url = `http://${host}:8080/`;
      const page = await pageOf(url);
      say(`  curl ${url}  -> ${JSON.stringify(page.trim())}`);
    }
    const byName = await pageOf(`http://${HOSTS[0]}/`, 'web.demo.mesh');
    say(`and by its name through the HTTP ingress on port 80 of any node:`);
    say(`  curl -H 'Host: web.demo.mesh' http://${HOSTS[0]}/  -> ${JSON.stringify(byName.trim())}`);
    say('\nworker reaches web by its name, through its service address (mesh logs worker):');
    for (const line of await workerLines(first)) say(`  ${line}`);
    say(
      [
        '',
        'Try, in another terminal:',
        `  npx mesh ps --data-dir ${agents[1]?.dataDir}`,
        `  npx mesh inspect web --data-dir ${first.dataDir}   # address, DNS name, endpoints`,
        `  npx mesh logs worker -f --data-dir ${first.dataDir}`,
        `  npx mesh scale web=5 --data-dir ${first.dataDir}`,
        `  kill -9 $(pgrep -f "${agents[2]?.dataDir}")   # its replicas move within seconds`,
        '',
        'Ctrl-C removes the stack, stops the agents and removes their data.',
        '',
      ].join('\n'),
    );
    if (process.argv.includes('--once')) {
      await stop();
      return;
    }
    await interrupted;
    await stop();
  } catch (error) {
    await stop();
    // A step cut short by the interrupt fails: the handler exits with the signal's code.
    if (signalled) return;
    throw error;
  }
}

await main();

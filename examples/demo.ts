/**
 * npm run demo: a local three-node cluster on 127.0.0.1-127.0.0.3, each agent a separate process
 * with its own data dir. Ctrl-C makes every agent leave gracefully and removes the data.
 *
 *   npm run demo [-- --once]     (--once: show the cluster, then stop)
 */
import { rm } from 'node:fs/promises';
import {
  type AgentProcess,
  mesh,
  startCluster,
  stopAgents,
  testDirectory,
} from './local-cluster.js';

const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

async function main(): Promise<void> {
  const root = await testDirectory('demo');
  const agents: AgentProcess[] = [];
  const stop = async () => {
    process.stdout.write('\nmesh demo: stopping the agents (each leaves the cluster gracefully)\n');
    await stopAgents(agents, 'SIGTERM');
    await rm(root, { recursive: true, force: true });
  };
  try {
    process.stdout.write(
      `mesh demo: starting 3 agents on ${HOSTS.join(', ')} (data and logs in ${root})\n`,
    );
    agents.push(...(await startCluster(root, HOSTS, 'node', ['--label', 'role=seed'])));
    const first = agents[0] as AgentProcess;
    const deadline = Date.now() + 15_000;
    let listing = '';
    while (Date.now() < deadline) {
      listing = (await mesh('node', 'ls', '--data-dir', first.dataDir)).stdout;
      const count = (word: string) =>
        (listing.match(new RegExp(`\\b${word}\\b`, 'g')) ?? []).length;
      // Wait until gossip sees everyone and the leader has seated all three as Raft voters.
      if (count('alive') === HOSTS.length && count('voter') === HOSTS.length) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    process.stdout.write(`\n${listing}\n`);
    process.stdout.write(
      [
        'Try, in another terminal:',
        `  npx mesh node ls --data-dir ${agents[1]?.dataDir}`,
        `  npx mesh status --data-dir ${first.dataDir}`,
        `  kill -9 $(pgrep -f "${agents[2]?.dataDir}")   # seen as dead within seconds`,
        '',
        'Stacks, scheduling, DNS and the ingress are coming next (see mesh --help).',
        'Ctrl-C stops the agents and removes their data.',
        '',
      ].join('\n'),
    );
    if (process.argv.includes('--once')) {
      await stop();
      return;
    }
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    await stop();
  } catch (error) {
    await stop();
    throw error;
  }
}

await main();

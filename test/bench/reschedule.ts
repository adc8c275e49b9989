/**
 * Self-healing with real agents and a real Docker Engine: three agents on 127.0.23.1-3 run a
 * stack; each trial kills -9 one agent and removes its containers (a machine gone), and times
 * until every replica is ready again on the other nodes, with the end of each stage since the
 * kill, as another node sees it: detected (gossip no longer says alive), placed (every
 * replacement has a node), running, ready. The killed agent then comes back.
 *
 *   npm run bench:reschedule -- [--trials 10] [--replicas 6] [--json]
 */
import Docker from 'dockerode';
import { callAgent } from '../../cli/control-client.js';
import { ensureTestImage } from '../../examples/test-image.js';
import { removeLabelled } from '../helpers/containers.js';
import {
  type AgentProcess,
  LocalCluster,
  mesh,
  nodeIdOf,
  waitForControl,
} from '../helpers/local-cluster.js';
import { note, option, report, status, summary, tasks, until, writeWebStack } from './harness.js';

const HOSTS = ['127.0.23.1', '127.0.23.2', '127.0.23.3'];

type Stage = 'detected' | 'placed' | 'running' | 'ready';

async function main(): Promise<void> {
  const trials = option('trials', 10);
  const replicas = option('replicas', 6);
  const docker = new Docker();
  await ensureTestImage(docker);
  const cluster = await LocalCluster.create('reschedule');
  const file = writeWebStack(cluster.root, replicas);
  const agents = await cluster.start(HOSTS, 'n');
  const clusterId = (await status(agents[0] as AgentProcess)).clusterId;
  try {
    await until('three ready nodes', 60_000, async () =>
      (await status(agents[0] as AgentProcess)).members.alive === 3 ? true : undefined,
    );
    const deployed = await mesh(
      'deploy',
      '-c',
      file,
      'bench',
      '--data-dir',
      agents[0]?.dataDir ?? '',
    );
    if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr}`);
    const samples: number[] = [];
    const trialsSeen: Array<Record<string, number | boolean>> = [];
    for (let trial = 0; trial < trials; trial++) {
      const index = trial % agents.length;
      const victim = agents[index] as AgentProcess;
      const survivor = agents[(index + 1) % agents.length] as AgentProcess;
      const lost = await nodeIdOf(victim);
      // Start from a settled cluster: every node sees all alive and voting under one leader (so
      // any one may go), and every replica runs.
      await until('settled', 60_000, async () => {
        const views = await Promise.all(agents.map(status));
        const leader = views[0]?.raft.leader;
        const agreed = views.every(
          (v) =>
            v.members.alive === 3 &&
            v.raft.voters.length === 3 &&
            leader &&
            v.raft.leader === leader,
        );
        const running = (await tasks(survivor, { service: 'bench.web' })).filter(
          (t) => t.desired === 'running' && t.state === 'running',
        );
        return agreed && running.length === replicas ? true : undefined;
      });
      const onVictim = (await tasks(survivor, { service: 'bench.web' })).filter(
        (t) => t.node === lost,
      );
      const wasLeader = (await status(victim)).raft.role === 'leader';
      const before = new Set((await tasks(survivor, { service: 'bench.web' })).map((t) => t.id));
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      await removeLabelled(docker, `mesh.node=${lost}`);
      // Each stage's end, as first seen through the survivor (polled every 10 ms).
      const seen: Partial<Record<Stage, number>> = {};
      await until('replicas ready elsewhere', 60_000, async () => {
        const now = performance.now();
        if (seen.detected === undefined) {
          const { nodes } = await callAgent(survivor.dataDir, 'GET /v1/nodes', {});
          if (nodes.some((n) => n.id === lost && n.status !== 'alive')) seen.detected = now;
        }
        const replacements = (await tasks(survivor, { service: 'bench.web' })).filter(
          (t) => t.desired === 'running' && !before.has(t.id),
        );
        const all = (check: (t: (typeof replacements)[number]) => boolean) =>
          replacements.length >= onVictim.length && replacements.every(check);
        if (seen.placed === undefined && all((t) => t.node !== null)) seen.placed = now;
        if (seen.running === undefined && all((t) => t.state === 'running')) seen.running = now;
        if (all((t) => t.ready === true)) seen.ready = now;
        return seen.ready === undefined ? undefined : true;
      });
      const at = (stage: Stage) => Math.round((seen[stage] ?? killedAt) - killedAt);
      trialsSeen.push({
        ms: at('ready'),
        leader: wasLeader,
        moved: onVictim.length,
        detectedMs: at('detected'),
        placedMs: at('placed'),
        runningMs: at('running'),
        readyMs: at('ready'),
      });
      samples.push(at('ready'));
      note(
        `trial ${trial + 1}: ${at('ready')} ms (${onVictim.length} replicas moved off ${lost}${wasLeader ? ', the leader' : ''}): detected ${at('detected')}, placed ${at('placed')}, running ${at('running')}, ready ${at('ready')}`,
      );
      await victim.exited;
      agents[index] = cluster.spawn(`n${index + 1}`, ['agent']);
      await waitForControl(agents[index] as AgentProcess);
    }
    const stage = (key: string) =>
      summary(trialsSeen.map((trial) => trial[key] as number)).medianMs;
    report({
      replicas,
      ...summary(samples),
      medianStagesMs: {
        detected: stage('detectedMs'),
        placed: stage('placedMs'),
        running: stage('runningMs'),
        ready: stage('readyMs'),
      },
      trialStages: trialsSeen,
      goalMedianMs: 3000,
    });
  } finally {
    await cluster.close();
    await removeLabelled(docker, `mesh.cluster=${clusterId}`);
  }
}

await main();

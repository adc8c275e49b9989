/**
 * How fast autoscaling follows load, and what its sampling costs, on a real Docker Engine.
 *
 * Reaction: three agents (127.0.88.1-3) run `burn`, a busybox CGI spending about 20 ms of CPU a
 * request, a tenth of a CPU reserved per replica, autoscaled 1–3 on cpu 50 %. Each trial puts a
 * bounded load on it through a node's ingress and times load start → the decision (metrics and
 * deciding) → every new replica ready (starting them); then stops the load (a trickle goes on)
 * and times load stop → back to one replica, the stabilization window taken off.
 *
 * Sampling: one agent (127.0.88.11) runs N replicas that do nothing; its CPU and memory, and the
 * engine's CPU, over windows without autoscaling and with the same replicas autoscaled (min =
 * max: sampled and decided, never scaled), in turn. The difference of the means is the cost.
 *
 *   npm run bench:autoscale -- [--trials 3] [--window-s 10] [--tasks 50] [--measure-s 30] [--rounds 2]
 *     [--json]
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { ServiceDetail, ServiceRow, StackRow } from '../../agent/control/api.js';
import { callAgent } from '../../cli/control-client.js';
import { ensureTestImage, TEST_IMAGE } from '../../examples/test-image.js';
import { burnStack } from '../helpers/burn.js';
import { removeLabelled } from '../helpers/containers.js';
import { startLoad } from '../helpers/load.js';
import { type AgentProcess, LocalCluster, meshOn } from '../helpers/local-cluster.js';
import {
  agreement,
  cleanupOnSignal,
  clockTicksPerSecond,
  cpuPercentOver,
  memoryMb,
  note,
  option,
  report,
  status,
  summary,
  until,
} from './harness.js';

const run = promisify(execFile);
const HOSTS = ['127.0.88.1', '127.0.88.2', '127.0.88.3'];
const SAMPLING_HOST = '127.0.88.11';
const CLIENT = '127.0.88.77';
const HTTP_PORT = 18_088;
/** The goals the issue set (#25). */
const GOALS = { upMedianSeconds: 20, failed: 0, samplingCpuPercent: 1 };

const clusters: LocalCluster[] = [];
const clusterIds: string[] = [];
const docker = new Docker();
const stopAll = cleanupOnSignal(async () => {
  for (const cluster of clusters) await cluster.close();
  for (const id of clusterIds) await removeLabelled(docker, `mesh.cluster=${id}`);
  await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
});

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function deploy(agent: AgentProcess, cluster: LocalCluster, name: string, text: string) {
  const deployed = await meshOn(agent, 'deploy', '-c', cluster.file(`${name}.yml`, text), name);
  if (deployed.code !== 0) throw new Error(`deploy ${name} failed:\n${deployed.stderr}`);
}

async function row(agent: AgentProcess): Promise<ServiceRow> {
  const [stack] = await callAgent(agent.dataDir, 'GET /v1/stacks', {});
  const found = (stack as StackRow | undefined)?.services[0];
  if (!found || 'damaged' in found) throw new Error('no service listed');
  return found;
}

const detail = (agent: AgentProcess, service: string): Promise<ServiceDetail> =>
  callAgent(agent.dataDir, 'GET /v1/service', { service });

/** Load → scaled up and ready, load stopped → back to one, `trials` times. */
async function reaction(trials: number, windowS: number) {
  const cluster = await LocalCluster.create('bench-autoscale');
  clusters.push(cluster);
  const agents = await cluster.start(
    HOSTS,
    'a',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  const first = agents[0] as AgentProcess;
  clusterIds.push((await status(first)).clusterId);
  await until('3 members alive', 60_000, async () =>
    (await status(first)).members.alive === 3 ? true : undefined,
  );
  await agreement(agents, 60_000);
  await deploy(first, cluster, 'bench', burnStack({ route: 'burn.bench.test', max: 3, windowS }));
  // Through a node that is not the leader, as a client would come in anywhere.
  const target = {
    host: HOSTS[1] as string,
    port: HTTP_PORT,
    hostHeader: 'burn.bench.test',
    localAddress: CLIENT,
  };
  const up: number[] = [];
  const detect: number[] = [];
  const start: number[] = [];
  const down: number[] = [];
  let requests = 0;
  let failed = 0;
  for (let trial = 1; trial <= trials; trial++) {
    await until('back at one ready replica', 120_000, async () => {
      const r = await row(first);
      return r.desired === 1 && r.ready === 1 ? true : undefined;
    });
    note(`autoscale: trial ${trial}: load on`);
    const loadAt = Date.now();
    const load = startLoad(
      { ...target, path: '/cgi-bin/burn' },
      { clients: 1, maxRequests: 100_000, maxMs: 120_000, pauseMs: 30 },
    );
    await until('3 ready replicas', 120_000, async () => {
      const r = await row(first);
      return r.desired === 3 && r.ready === 3 ? true : undefined;
    });
    const readyAt = Date.now();
    const loaded = await load.stop();
    const decided = (await detail(first, 'bench.burn')).autoscaling?.decisions.find(
      (d) => d.at >= loadAt && d.to > d.from,
    );
    up.push(readyAt - loadAt);
    if (decided) {
      detect.push(decided.at - loadAt);
      start.push(readyAt - decided.at);
    }
    note(`autoscale: trial ${trial}: load off`);
    const stopAt = Date.now();
    const trickle = startLoad(target, {
      clients: 1,
      maxRequests: 10_000,
      maxMs: 240_000,
      pauseMs: 200,
    });
    await until('back to one replica', 240_000, async () => {
      const r = await row(first);
      return r.desired === 1 && r.running === 1 ? true : undefined;
    });
    down.push(Date.now() - stopAt - windowS * 1000);
    const trickled = await trickle.stop();
    requests += loaded.requests + trickled.requests;
    failed += loaded.failed + trickled.failed;
  }
  await cluster.close();
  const seconds = (samples: number[]) => {
    const s = summary(samples);
    return {
      trials: s.trials,
      median: round(s.medianMs / 1000),
      max: round(s.maxMs / 1000),
      samples: s.samples.map((ms) => round(ms / 1000)),
    };
  };
  return {
    windowSeconds: windowS,
    loadToReadySeconds: seconds(up),
    loadToDecisionSeconds: seconds(detect),
    decisionToReadySeconds: seconds(start),
    stopToScaledDownSecondsWindowExcluded: seconds(down),
    requests,
    failed,
  };
}

const idleStack = (tasks: number, autoscaled: boolean) => `
services:
  idle:
    image: ${TEST_IMAGE}
    command: ["sleep", "86400"]
    stop_grace_period: 1s
    deploy:
      replicas: ${tasks}
      resources: { reservations: { cpus: "0.01" } }
${autoscaled ? `    x-mesh: { autoscale: { min: ${tasks}, max: ${tasks}, cpu: 50 } }\n` : ''}`;

interface Measured {
  cpuPercent: number;
  rssMb: number;
}

/** Each process's CPU (percent of a core) over the window, and its memory at the end. */
async function windowOf(pids: number[], ms: number, ticksPerSecond: number) {
  const cpu = await cpuPercentOver(pids, ms, ticksPerSecond);
  return pids.map((pid, i) => ({
    cpuPercent: round(cpu[i] as number, 2),
    rssMb: round(memoryMb(pid).rss),
  }));
}

/**
 * The agent's and the engine's cost of sampling `tasks` replicas every 5 s: windows without and
 * with autoscaling in turn (`rounds` of each, a redeploy between: no task is replaced), so that
 * what drifts on its own falls on both sides.
 */
async function sampling(tasks: number, measureMs: number, rounds: number, ticksPerSecond: number) {
  const cluster = await LocalCluster.create('bench-autoscale-sampling');
  clusters.push(cluster);
  const [agent] = (await cluster.start([SAMPLING_HOST], 's')) as [AgentProcess];
  clusterIds.push((await status(agent)).clusterId);
  const dockerd = Number((await run('pidof', ['dockerd'])).stdout.trim().split(' ')[0]);
  const pids = [agent.child.pid as number, dockerd];
  note(`autoscale: ${tasks} replicas on one node`);
  const windows: Array<{ autoscaled: boolean; agent: Measured; engine: Measured }> = [];
  for (let i = 0; i < rounds * 2; i++) {
    const autoscaled = i % 2 === 1;
    await deploy(agent, cluster, 'idle', idleStack(tasks, autoscaled));
    await until(`${tasks} replicas running`, 300_000, async () => {
      const r = await row(agent);
      return r.running === tasks ? true : undefined;
    });
    if (autoscaled)
      await until('every replica sampled', 60_000, async () => {
        const record = (await detail(agent, 'idle.idle')).autoscaling;
        return record && record.observed.cpu !== undefined ? true : undefined;
      });
    await sleep(10_000);
    note(`autoscale: ${measureMs / 1000} s ${autoscaled ? 'with' : 'without'} autoscaling`);
    const [agentUse, engineUse] = (await windowOf(pids, measureMs, ticksPerSecond)) as [
      Measured,
      Measured,
    ];
    windows.push({ autoscaled, agent: agentUse, engine: engineUse });
  }
  await cluster.close();
  const mean = (autoscaled: boolean, of: (w: (typeof windows)[number]) => number) => {
    const values = windows.filter((w) => w.autoscaled === autoscaled).map(of);
    return values.reduce((sum, v) => sum + v, 0) / values.length;
  };
  const difference = (of: (w: (typeof windows)[number]) => number) =>
    mean(true, of) - mean(false, of);
  return {
    tasks,
    measureSeconds: measureMs / 1000,
    windows,
    samplingCpuPercent: round(
      difference((w) => w.agent.cpuPercent + w.engine.cpuPercent),
      2,
    ),
    agentCpuPercent: round(
      difference((w) => w.agent.cpuPercent),
      2,
    ),
    engineCpuPercent: round(
      difference((w) => w.engine.cpuPercent),
      2,
    ),
  };
}

async function main(): Promise<void> {
  const trials = option('trials', 3);
  const windowS = option('window-s', 10);
  const tasks = option('tasks', 50);
  const measureMs = option('measure-s', 30) * 1000;
  const ticksPerSecond = await clockTicksPerSecond();
  await ensureTestImage(docker);
  await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
  try {
    const reacted = await reaction(trials, windowS);
    const sampled = await sampling(tasks, measureMs, option('rounds', 2), ticksPerSecond);
    report({
      goals: GOALS,
      reaction: reacted,
      sampling: sampled,
      // Above 1: over the goal by that ratio.
      upToGoal: round(reacted.loadToReadySeconds.median / GOALS.upMedianSeconds, 2),
      samplingToGoal: round(sampled.samplingCpuPercent / GOALS.samplingCpuPercent, 2),
    });
  } finally {
    await stopAll();
  }
}

await main();

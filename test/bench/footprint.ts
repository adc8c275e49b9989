/**
 * What an idle agent costs its machine: resident memory and CPU of each agent process of a local
 * cluster that runs nothing, measured from /proc over an idle window, at each cluster size asked.
 * Agents on 127.0.80.1-N, DNS and the ingress on as by default, no upstream resolver; then the
 * same while they serve a small stack (process tasks, a published port, an ingress route).
 *
 *   npm run bench:footprint -- [--nodes 3,12] [--idle-s 30] [--json]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { requestOnce } from '../helpers/load.js';
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
  until,
} from './harness.js';

/** The goals the issue set (#26): per agent, at 3 nodes. */
const GOALS = { rssMb: 60, cpuPercent: 0.5 };
/** From the agents' agreement to the start of the idle window. */
const SETTLE_MS = 30_000;

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** The clusters started, each stopped when measured, or all on Ctrl-C. */
const clusters: LocalCluster[] = [];
const stopAll = cleanupOnSignal(async () => {
  for (const cluster of clusters) await cluster.close();
});

/** A stack that wakes every part of an agent: replicas, a published port, an ingress route. */
const SERVER =
  "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, process.env.MESH_HOST)";
const SERVING_STACK = `services:\n  web:\n    command: ${JSON.stringify([process.execPath, '-e', SERVER])}\n    ports: ["18080:8080"]\n    x-mesh: { runtime: process }\n    deploy: { replicas: 3 }\n`;
/** Requests sent through one node's ingress before the second window: a few reach other nodes. */
const SERVING_REQUESTS = 20;

/** Each agent's memory at the end of an idle window, and its CPU over it. */
async function window(pids: number[], idleMs: number, ticksPerSecond: number) {
  const cpuPercent = await cpuPercentOver(pids, idleMs, ticksPerSecond);
  const memory = pids.map(memoryMb);
  const rss = memory.map((m) => m.rss);
  return {
    anonMb: round(median(memory.map((m) => m.anon))),
    fileMb: round(median(memory.map((m) => m.file))),
    rssMb: {
      median: round(median(rss)),
      max: round(Math.max(...rss)),
      each: rss.map((r) => round(r)),
    },
    cpuPercent: {
      median: round(median(cpuPercent), 2),
      max: round(Math.max(...cpuPercent), 2),
      each: cpuPercent.map((c) => round(c, 2)),
    },
  };
}

/**
 * A cluster of this many agents, measured twice: running nothing, then serving a stack of three
 * replicas that a few requests went through (its tasks' own processes not counted).
 */
async function measure(nodes: number, idleMs: number, ticksPerSecond: number) {
  const hosts = Array.from({ length: nodes }, (_, i) => `127.0.80.${i + 1}`);
  const cluster = await LocalCluster.create(`footprint-${nodes}`);
  clusters.push(cluster);
  try {
    note(`footprint: starting ${nodes} agents`);
    const agents = await cluster.start(hosts, 'f');
    const first = agents[0] as AgentProcess;
    await until(`${nodes} members alive`, 120_000, async () =>
      (await status(first)).members.alive === nodes ? true : undefined,
    );
    await agreement(agents, 60_000);
    // Joining and seating are over, and the code the idle loop runs is compiled (during the
    // first half minute the JIT still costs a few tenths of a percent): what follows is the cost
    // of being a member.
    await sleep(SETTLE_MS);
    const pids = agents.map((a) => a.child.pid as number);
    note(`footprint: ${nodes} agents idle for ${idleMs / 1000} s`);
    const idle = await window(pids, idleMs, ticksPerSecond);
    const deployed = await meshOn(
      first,
      'deploy',
      '-c',
      cluster.file('web.yml', SERVING_STACK),
      'fp',
    );
    if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);
    // The ingress thread starts with the first route: it may still be starting as deploy returns.
    const target = { host: hosts[0] as string, port: 80, hostHeader: 'web.fp.mesh' };
    await until('the ingress answering', 10_000, async () =>
      (await requestOnce(target)).body === 'ok' ? true : undefined,
    );
    for (let i = 0; i < SERVING_REQUESTS; i++) {
      const answer = await requestOnce(target);
      if (answer.body !== 'ok') throw new Error(`the ingress answered ${answer.status}`);
    }
    await sleep(SETTLE_MS);
    note(`footprint: ${nodes} agents serving a stack, idle for ${idleMs / 1000} s`);
    const serving = await window(pids, idleMs, ticksPerSecond);
    return { nodes, ...idle, serving };
  } finally {
    await cluster.close();
  }
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--nodes');
  const sizes = (at >= 0 ? (process.argv[at + 1] ?? '') : '3,12').split(',').map(Number);
  const idleMs = option('idle-s', 30) * 1000;
  const ticksPerSecond = await clockTicksPerSecond();
  const results = [];
  try {
    for (const nodes of sizes) results.push(await measure(nodes, idleMs, ticksPerSecond));
  } finally {
    await stopAll();
  }
  report({
    idleSeconds: idleMs / 1000,
    goals: GOALS,
    results: results.map((r) => ({
      ...r,
      // Above 1: over the goal by that ratio.
      rssToGoal: round(r.rssMb.median / GOALS.rssMb, 2),
      cpuToGoal: round(r.cpuPercent.median / GOALS.cpuPercent, 2),
    })),
  });
}

await main();

/**
 * What the dashboard costs and how fast it follows the cluster, in headless Chromium: three agents
 * (127.0.91.1-3) run 100 process tasks that do nothing; `mesh dashboard` on the first.
 *
 * - render: navigation to the service view until its 100 task rows are there, and to the nodes
 *   view until its 3 rows are (p95 of 5 each; goal ≤ 500 ms), beside `mesh ps` printing the same
 *   tasks in the same run;
 * - follow: a node label written through the control API, until the page shows it (10 times;
 *   goal p95 ≤ 2 s, median ≤ 1 s);
 * - idle: CPU of the dashboard process and of the browser with one tab open on the overview over
 *   a window (goal ≤ 2 % of a core), and of the agent it asks, beside the agents without it.
 *
 *   npm run bench:dashboard -- [--idle-s 30] [--json]
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { callAgent } from '../../cli/control-client.js';
import { launchChromium } from '../helpers/chromium.js';
import { startDashboard } from '../helpers/dashboard.js';
import { type AgentProcess, LocalCluster, meshOn, nodeIdOf } from '../helpers/local-cluster.js';
import {
  agreement,
  cleanupOnSignal,
  clockTicksPerSecond,
  cpuPercentOver,
  note,
  option,
  report,
  status,
  summary,
  until,
} from './harness.js';

const run = promisify(execFile);
const HOSTS = ['127.0.91.1', '127.0.91.2', '127.0.91.3'];
const TASKS = 100;
const GOALS = { renderP95Ms: 500, followP95Ms: 2000, followMedianMs: 1000, idleCpuPercent: 2 };

const STACK = `services:
  idle:
    command: ["sleep", "86400"]
    stop_grace_period: 1s
    x-mesh: { runtime: process }
    deploy: { replicas: ${TASKS} }
`;

let dashboardProcess: ChildProcess | undefined;
const cluster = await LocalCluster.create('bench-dashboard');
const stopAll = cleanupOnSignal(async () => {
  dashboardProcess?.kill('SIGTERM');
  await cluster.close();
});

/**
 * The processes of the browser (its renderers and helpers included), for their CPU: Debian's
 * /usr/bin/chromium is a script that starts the real binary, so they are found by name.
 */
async function browserPids(): Promise<number[]> {
  const { stdout } = await run('pgrep', ['-f', 'chromium']).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

async function main(): Promise<void> {
  const idleMs = option('idle-s', 30) * 1000;
  const ticksPerSecond = await clockTicksPerSecond();
  process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
  const agents = await cluster.start(
    HOSTS,
    'b',
    [],
    ['--dns-upstream', 'none', '--http-port', '0'],
  );
  const first = agents[0] as AgentProcess;
  await until('3 members alive', 60_000, async () =>
    (await status(first)).members.alive === 3 ? true : undefined,
  );
  await agreement(agents, 60_000);
  note(`dashboard: deploying ${TASKS} process tasks`);
  const deployed = await meshOn(
    first,
    'deploy',
    '-c',
    cluster.file('idle.yml', STACK),
    'bench',
    '--timeout',
    '5m',
  );
  if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.stderr}`);

  const { child: dashboard, link } = await startDashboard(first);
  dashboardProcess = dashboard;
  const origin = new URL(link).origin;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(link);
    await page.locator('[data-members]').waitFor();

    note('dashboard: render');
    const timed = async (path: string, rows: string, count: number) => {
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) {
        await page.goto('about:blank');
        const started = performance.now();
        await page.goto(`${origin}/${path}`);
        await page
          .locator(rows)
          .nth(count - 1)
          .waitFor();
        samples.push(performance.now() - started);
      }
      return summary(samples);
    };
    const tasksView = await timed('#/service/bench.idle', '[data-task]', TASKS);
    const nodesView = await timed('#/nodes', '[data-node]', 3);
    const cli: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const listed = await meshOn(first, 'ps', 'bench.idle');
      if (listed.code !== 0) throw new Error(listed.stderr);
      cli.push(performance.now() - started);
    }

    note('dashboard: follow');
    const nodeTwo = await nodeIdOf(agents[1] as AgentProcess);
    await page.goto(`${origin}/#/nodes`);
    await page.locator('[data-node]').nth(2).waitFor();
    const follow: number[] = [];
    for (let i = 0; i < 10; i++) {
      await callAgent(first.dataDir, 'POST /v1/node', { node: nodeTwo, labels: [`bench=${i}`] });
      const applied = performance.now();
      await page
        .locator(`[data-node="${nodeTwo}"]`)
        .filter({ hasText: `bench=${i}` })
        .waitFor({ timeout: 10_000 });
      follow.push(performance.now() - applied);
    }

    note(`dashboard: ${idleMs / 1000} s idle with one tab on the overview`);
    await page.goto(`${origin}/#/`);
    await page.locator('[data-members]').waitFor();
    const watched = [dashboard.pid as number, ...(await browserPids())];
    const agentPids = agents.map((a) => a.child.pid as number);
    const [dashboardCpu = 0, ...browserCpu] = await cpuPercentOver(watched, idleMs, ticksPerSecond);
    const withTab = await cpuPercentOver(agentPids, idleMs, ticksPerSecond);
    await page.close();
    await context.close();
    dashboard.kill('SIGTERM');
    const withoutTab = await cpuPercentOver(agentPids, idleMs, ticksPerSecond);
    const round = (n: number) => Math.round(n * 100) / 100;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const followed = summary(follow);
    const idle = round(dashboardCpu + sum(browserCpu));
    report({
      tasks: TASKS,
      goals: GOALS,
      render: {
        tasksView,
        nodesView,
        cliPs: summary(cli),
        // Above 1: slower than `mesh ps` printing the same tasks.
        tasksViewToCli: round(tasksView.medianMs / (summary(cli).medianMs || 1)),
      },
      follow: followed,
      idle: {
        seconds: idleMs / 1000,
        dashboardCpuPercent: round(dashboardCpu),
        browserCpuPercent: round(sum(browserCpu)),
        totalCpuPercent: idle,
        agentsCpuPercent: { withTab: withTab.map(round), withoutTab: withoutTab.map(round) },
      },
      toGoal: {
        render: round(Math.max(tasksView.p99Ms, nodesView.p99Ms) / GOALS.renderP95Ms),
        followP95: round(followed.p99Ms / GOALS.followP95Ms),
        idle: round(idle / GOALS.idleCpuPercent),
      },
    });
  } finally {
    await browser.close();
    await stopAll();
  }
}

await main();

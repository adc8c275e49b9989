/**
 * `mesh dashboard`, tried in headless Chromium as a new user would: three local nodes with
 * process tasks; the printed link logs in once; a stack with a typo is refused by line, fixed,
 * checked and deployed; scaled from the page and from a shell (seen without a reload); its logs;
 * a node drained, then killed; a rollback; forged Host and Origin refused. Screenshots of each
 * view go to $MESH_TEST_OUTPUT (or a temporary directory), named in the test's log.
 */
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { browserTest } from '../helpers/browser.js';
import { startDashboard } from '../helpers/dashboard.js';
import { requestOnce } from '../helpers/load.js';
import {
  type AgentProcess,
  LocalCluster,
  meshOn,
  nodeIdOf,
  nodesRecorded,
} from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

// Loopback block 127.0.90.0/24. No engine: process tasks only.
process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
const HOSTS = ['127.0.90.1', '127.0.90.2', '127.0.90.3'];
const HTTP_PORT = 18_090;
const SHOTS = join(process.env.MESH_TEST_OUTPUT ?? tmpdir(), 'mesh-dashboard-screenshots');
const cluster = await LocalCluster.create('dashboard');

/** web: a Node server that says where it runs, and prints a line as it starts. */
const stack = (typo: boolean, greeting: string) => `services:
  web:
    ${typo ? 'imagee: web' : 'x-mesh: { runtime: process }'}
    command: ["node", "-e", "console.log('${greeting} from ' + process.env.MESH_TASK); require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, process.env.MESH_HOST)"]
    ports: ["8080"]
    stop_grace_period: 1s
    deploy: { replicas: 2 }
`;

/** A raw request to the dashboard, with the headers a forger would send. */
function raw(
  url: string,
  options: { method?: string; headers: Record<string, string> },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(options.method === 'POST' ? '{}' : undefined);
  });
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits until the element's text matches (the page re-reads on its own: never a reload). */
async function shows(page: Page, selector: string, text: RegExp, timeoutMs = 30_000) {
  await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: timeoutMs });
}

browserTest('the dashboard, tried as a new user would', async (t, browser) => {
  mkdirSync(SHOTS, { recursive: true });
  const agents = await cluster.start(
    HOSTS,
    'd',
    [],
    ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
  );
  t.teardown(() => cluster.close());
  const [first, , third] = agents as [AgentProcess, AgentProcess, AgentProcess];
  await nodesRecorded(first, 3);
  const { child, link } = await startDashboard(first);
  t.teardown(() => child.kill('SIGTERM'));
  const origin = new URL(link).origin;

  // The printed link logs in, and leaves the address bar.
  const page = await browser.newPage();
  await page.goto(link);
  t.is(new URL(page.url()).search, '', 'the token is gone from the address');
  await shows(page, '[data-members]', /3 alive/);
  await shoot(page, '1-overview');
  // The same link again is refused, with what to do.
  const again = await browser.newPage();
  await again.goto(link);
  t.regex((await again.textContent('body')) ?? '', /This link has expired[\s\S]*mesh dashboard/);
  await again.close();

  // A typo is refused by line; fixed, checked (what would change), then deployed.
  await page.goto(`${origin}/#/deploy`);
  await page.fill('[data-stack]', 'web');
  await page.fill('[data-compose]', stack(true, 'hello'));
  await page.click('text=Check');
  await shows(page, '[data-problems]', /line 3, column \d+: services\.web.*imagee/);
  await shows(page, '[data-marked] .refused', /^3\s*imagee: web$/);
  t.true(await page.isDisabled('[data-deploy]'), 'Deploy stays off while the file is refused');
  await shoot(page, '2-deploy-refused');
  await page.fill('[data-compose]', stack(false, 'hello'));
  await page.click('text=Check');
  await shows(page, '[data-diff]', /would be created: web\.web/);
  await page.click('[data-deploy]');
  await shows(page, '[data-diff]', /created: web\.web \(version 1\)/);
  await page.goto(`${origin}/#/stacks`);
  await shows(page, '[data-service="web.web"] [data-replicas]', /^2\/2$/);
  await shoot(page, '3-stacks');

  // Scaled to 4 from the page; its logs show what the tasks printed.
  await page.click('text=web.web');
  await page.fill('[data-scale-input]', '4');
  await page.click('text=Scale');
  await shows(page, '[data-said]', /scale web\.web=4: done/);
  await eventually(async () => (await page.$$('[data-task] [data-state]')).length === 4, {
    what: 'four tasks listed',
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  await shows(page, '[data-logs]', /hello from web\.web\./);
  // Requests through another node's ingress show in the service's traffic, summed over nodes. Its
  // ingress workers start with its first route: they may still be starting as the tasks run.
  const ingressOf = { host: HOSTS[1] as string, port: HTTP_PORT, hostHeader: 'web.web.mesh' };
  await eventually(
    () =>
      requestOnce(ingressOf).then(
        () => true,
        () => undefined,
      ),
    {
      what: "node 2's ingress listening",
      timeoutMs: 10_000,
      intervalMs: 100,
    },
  );
  for (let i = 0; i < 39; i++) {
    const answer = await requestOnce({
      host: HOSTS[1] as string,
      port: HTTP_PORT,
      hostHeader: 'web.web.mesh',
    });
    t.is(answer.status, 200, answer.body);
  }
  await shows(
    page,
    '[data-traffic]',
    /req\/s \(peak ([1-9]\d*\.\d|0\.[1-9])\).*0\.0% 5xx.*p95 ≤ \d+ ms at the peak.*3 of 3 nodes/,
  );
  await shoot(page, '4-service');

  // Node 3 drained: no task of web left on it.
  const nodeThree = await nodeIdOf(third);
  await page.goto(`${origin}/#/nodes`);
  await page.click(`[data-node="${nodeThree}"] >> text=Drain`);
  await shows(page, `[data-node="${nodeThree}"] [data-availability]`, /drain/);
  await page.goto(`${origin}/#/service/web.web`);
  await eventually(
    async () => {
      const nodes = await page.$$eval('[data-task-node]', (cells) =>
        cells.map((c) => c.textContent),
      );
      return nodes.length === 4 && !nodes.includes(nodeThree);
    },
    { what: 'web off node 3', timeoutMs: 30_000, intervalMs: 200 },
  );

  // A shell scales it down: the page follows without a reload.
  await page.goto(`${origin}/#/stacks`);
  const scaled = await meshOn(first, 'scale', 'web.web=1');
  t.is(scaled.code, 0, scaled.stderr);
  await shows(page, '[data-service="web.web"] [data-replicas]', /^1\/1$/);

  // An update whose new task never becomes ready: the rollout, with its health, waits on it;
  // Rollback from the page.
  const neverReady = stack(false, 'hi').replace(
    'x-mesh: { runtime: process }',
    'x-mesh: { runtime: process, readiness: { tcp: 9, interval: 200ms, failure_threshold: 1000 } }',
  );
  const updated = await meshOn(
    first,
    'deploy',
    '-c',
    cluster.file('v2.yml', neverReady),
    'web',
    '--detach',
  );
  t.is(updated.code, 0, updated.stderr);
  await page.goto(`${origin}/#/service/web.web`);
  await shows(page, '[data-rollout]', /Rollout to version 2: updating/);
  await shows(page, '[data-rollout]', /old ready 1 · new starting 2 · new ready 0\/2 · failed 0/);
  await shows(page, '[data-rollout]', /waits for web\.web\.\S+: .*port 9/);
  await shoot(page, '5-rollout');
  await page.click('text=Rollback');
  await shows(page, '[data-said]', /rollback web\.web: done/);
  await shows(page, 'section p', /version 3/);

  // A secret written from the page: listed, its value never shown again; a node labelled.
  await page.goto(`${origin}/#/values`);
  await page.fill('[data-value-name="secrets"]', 'db_password');
  await page.fill('[data-value-data="secrets"]', 'hunter2-secret');
  await page
    .locator('section', { has: page.locator('[data-value-name="secrets"]') })
    .locator('text=Create')
    .click();
  await shows(page, '[data-value="db_password"]', /db_password\s*1/);
  t.false((await page.content()).includes('hunter2-secret'), 'the value is not on the page');
  const nodeTwo = await nodeIdOf(agents[1] as AgentProcess);
  await page.goto(`${origin}/#/nodes`);
  await page.fill(`[data-node="${nodeTwo}"] input`, 'zone=a');
  await page.click(`[data-node="${nodeTwo}"] >> text=Label`);
  await shows(page, `[data-node="${nodeTwo}"]`, /zone=a/);

  // A service no node fits: each node says why, and what would fix it.
  const far = stack(false, 'far').replace(
    'replicas: 2',
    'replicas: 1, placement: { constraints: ["node.labels.zone == b"] }',
  );
  const deployedFar = await meshOn(
    first,
    'deploy',
    '-c',
    cluster.file('far.yml', far),
    'far',
    '--detach',
  );
  t.is(deployedFar.code, 0, deployedFar.stderr);
  await page.goto(`${origin}/#/service/far.web`);
  await shows(
    page,
    '[data-pending]',
    /1 waiting: no node satisfies the constraints: node\.labels\.zone == b/,
  );
  await shows(
    page,
    `[data-fit="${nodeTwo}"]`,
    new RegExp(
      `constraint node\\.labels\\.zone == b: it has "a".*mesh node label ${nodeTwo} zone=b`,
    ),
  );
  await shoot(page, '6-placement');

  // Node 3's daemon killed: suspect, then dead, as membership sees it.
  await page.goto(`${origin}/#/nodes`);
  third.child.kill('SIGKILL');
  await shows(page, `[data-node="${nodeThree}"] [data-status]`, /suspect|dead/);
  await shows(page, `[data-node="${nodeThree}"] [data-status]`, /dead/, 60_000);
  await shoot(page, '7-nodes');
  // The feed says it went through suspect on its way.
  await shows(page, '[data-feed]', new RegExp(`node suspect ${nodeThree}`));

  // A forger: another Host (DNS rebinding) or another Origin is refused.
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  t.is(await raw(`${origin}/api/stacks`, { headers: { cookie, host: 'evil.example:80' } }), 403);
  t.is(
    await raw(`${origin}/api/services/scale`, {
      method: 'POST',
      headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
    }),
    403,
  );
  t.is(await raw(`${origin}/api/stacks`, { headers: {} }), 401, 'no session, no data');
  t.log(`screenshots in ${SHOTS}`);
});

/**
 * Autoscaling on CPU, end to end on a real Docker Engine with three agents: a CGI that burns CPU
 * behind the ingress grows to its max under a bounded load, and shrinks back once the load stops
 * and the stabilization window passed, with no request failing; the leader killed in the middle
 * of the window hands it over rather than forgetting or restarting it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { StatusResponse } from '../../../agent/control/api.js';
import { burnStack } from '../../helpers/burn.js';
import { removeLabelled } from '../../helpers/containers.js';
import { dockerTest, engine } from '../../helpers/docker.js';
import { startLoad } from '../../helpers/load.js';
import {
  type AgentProcess,
  deployStack,
  firstServiceRow,
  LocalCluster,
  meshJson,
  nodeIdOf,
  nodesRecorded,
  serviceDetail,
  view,
} from '../../helpers/local-cluster.js';
import { eventually } from '../../helpers/poll.js';

const run = promisify(execFile);

// Loopback block 127.0.87.0/24: three nodes, 127.0.87.77 the test's client.
const HOSTS = ['127.0.87.1', '127.0.87.2', '127.0.87.3'];
const CLIENT = '127.0.87.77';
const HTTP_PORT = 18_087;
const WINDOW_MS = 30_000;
const cluster = await LocalCluster.create('autoscale-cpu');
let clusterId = '';

const STACK = burnStack({ route: 'burn.auto.test', max: 3, windowS: WINDOW_MS / 1000 });

dockerTest(
  'a CPU-bound service grows to its max under load and shrinks after the window, which a new leader keeps; no request fails',
  async (t) => {
    await run('ip', ['addr', 'add', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
    t.teardown(async () => {
      await cluster.close();
      await run('ip', ['addr', 'del', `${CLIENT}/32`, 'dev', 'lo']).catch(() => undefined);
      if (!('skip' in engine) && clusterId)
        await removeLabelled(engine.docker, `mesh.cluster=${clusterId}`);
    });
    const agents = await cluster.start(
      HOSTS,
      'cpu',
      [],
      ['--dns-upstream', 'none', '--http-port', String(HTTP_PORT)],
    );
    const first = agents[0] as AgentProcess;
    clusterId = (await meshJson<StatusResponse>(first, 'status')).clusterId;
    await nodesRecorded(first, 3);
    await deployStack(cluster, first, 'cpu', STACK);
    t.like(await firstServiceRow(first), { desired: 1, ready: 1 });

    // The load goes through a node that is not the leader: the leader is killed later.
    const leaderId = (await view(first)).raft.leader;
    const ids = await Promise.all(agents.map(nodeIdOf));
    const index = ids.indexOf(leaderId ?? '');
    const entry = (index + 1) % 3;
    const target = {
      host: HOSTS[entry] as string,
      port: HTTP_PORT,
      hostHeader: 'burn.auto.test',
      localAddress: CLIENT,
    };
    const load = startLoad(
      { ...target, path: '/cgi-bin/burn' },
      { clients: 1, maxRequests: 100_000, maxMs: 100_000, pauseMs: 30 },
    );
    await eventually(
      async () => {
        const row = await firstServiceRow(first);
        return row.desired === 3 && row.ready === 3;
      },
      { what: 'cpu.burn grown to 3 ready replicas', timeoutMs: 90_000, intervalMs: 500 },
    );
    const up = await load.stop();
    t.deepEqual(up.failures, [], `${up.failed} of ${up.requests} requests failed while growing`);
    const grown = (await serviceDetail(first, 'cpu.burn')).autoscaling;
    t.regex(grown?.decisions[0]?.reason ?? '', /^scaled 1→\d: cpu \d+% > target 50%/);

    // The window runs: the leader recommends fewer but holds.
    const trickle = startLoad(target, {
      clients: 1,
      maxRequests: 10_000,
      maxMs: 100_000,
      pauseMs: 200,
    });
    const holding = await eventually(
      async () => {
        const record = (await serviceDetail(first, 'cpu.burn')).autoscaling;
        return record?.reason.includes('waits for the stabilization window') && record;
      },
      { what: 'the scale-down waiting for its window', timeoutMs: 60_000, intervalMs: 500 },
    );
    const [highest] = holding.history.recommendations;
    t.is(highest?.replicas, 3, JSON.stringify(holding.history));

    // The leader goes in the middle of the window, and comes back as a follower would.
    t.is((await view(first)).raft.leader, leaderId, 'the leader is the one the test avoided');
    const leader = agents[index] as AgentProcess;
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await new Promise((resolve) => leader.child.once('exit', resolve));
    agents[index] = cluster.spawn(`cpu${index + 1}`, ['agent']);
    const survivor = agents[entry] as AgentProcess;

    // The next leader's first record carries the old window on: it neither forgot nor restarted it.
    const takenOver = await eventually(
      async () => {
        const record = await serviceDetail(survivor, 'cpu.burn')
          .then((d) => d.autoscaling)
          .catch(() => null);
        return record && record.decidedAt > killedAt && record;
      },
      { what: 'a record written after the kill', timeoutMs: 60_000, intervalMs: 500 },
    );
    t.true(
      takenOver.history.recommendations.some(
        (r) => r.at === highest?.at && r.replicas === highest.replicas,
      ) || takenOver.decisions.some((d) => d.to < d.from),
      JSON.stringify(takenOver),
    );
    const shrunk = await eventually(
      async () => {
        const record = await serviceDetail(survivor, 'cpu.burn')
          .then((d) => d.autoscaling)
          .catch(() => null);
        const down = record?.decisions.filter((d) => d.to < d.from).at(-1);
        return down && (await firstServiceRow(survivor)).desired === 1 && down;
      },
      { what: 'cpu.burn shrunk to 1 replica', timeoutMs: 90_000, intervalMs: 500 },
    );
    const down = await trickle.stop();
    t.deepEqual(
      down.failures,
      [],
      `${down.failed} of ${down.requests} requests failed while shrinking`,
    );
    // Not before the window since the highest recommendation passed, whoever led.
    t.true(shrunk.at - (highest?.at ?? 0) >= WINDOW_MS, JSON.stringify(shrunk));
    t.log(
      `grew to 3 under ${up.requests} requests; window kept across the kill (down ${Math.round((shrunk.at - (highest?.at ?? 0)) / 1000)} s after the highest recommendation); ${down.failed} of ${down.requests} failed while shrinking`,
    );
  },
);

import { randomBytes } from 'node:crypto';
import { LABEL } from '../../../agent/runtime/docker-labels.js';
import { DockerNetworks } from '../../../agent/runtime/docker-networks.js';
import { dockerTest, engine } from '../../helpers/docker.js';
import { testRanges } from '../../helpers/local-cluster.js';
import { captureLogs } from '../../helpers/logs.js';

// This file's block: 127.0.66 (no traffic; its bridge range comes from it); networks carry a
// cluster label of their own and are removed by it.
const { bridgeRange } = testRanges('127.0.66.1');
const clusterId = `ctest-networks-${randomBytes(4).toString('hex')}`;

async function removeNetworks(): Promise<void> {
  if (!('docker' in engine)) return;
  const { docker } = engine;
  for (const n of await docker.listNetworks({
    filters: { label: [`${LABEL.cluster}=${clusterId}`] },
  }))
    await docker.getNetwork(n.Id).remove();
}

function agentOn(nodeId: string) {
  if (!('docker' in engine)) throw new Error('no engine');
  return new DockerNetworks({
    docker: engine.docker,
    clusterId,
    nodeId,
    log: captureLogs(nodeId).log,
  });
}

dockerTest(
  'agents sharing an engine create their bridges at once, each on its own subnet',
  async (t, docker) => {
    t.teardown(removeNetworks);
    const agents = ['n1', 'n2', 'n3'].map(agentOn);
    const keys = ['vote_frontend', 'vote_backend', 'vote_default'];
    // Nine bridges asked for in the same moment, as three agents starting a stack's first tasks do.
    const names = await Promise.all(
      agents.flatMap((agent) => keys.map((key) => agent.ensure(key, bridgeRange))),
    );
    t.is(new Set(names).size, 9);
    const created = await docker.listNetworks({
      filters: { label: [`${LABEL.cluster}=${clusterId}`] },
    });
    const subnets = created.map((n) => n.IPAM?.Config?.[0]?.Subnet);
    t.is(created.length, 9);
    t.is(new Set(subnets).size, 9, `distinct subnets: ${subnets.join(', ')}`);
    t.true(subnets.every((s) => s?.startsWith('10.244.')));
  },
);

dockerTest('a bridge range with no /24 left says which networks hold its subnets', async (t) => {
  t.teardown(removeNetworks);
  // Two /24s: the third bridge cannot have one.
  const small = bridgeRange.replace(/\/20$/, '/23');
  const agent = agentOn('n1');
  await agent.ensure('a', small);
  await agent.ensure('b', small);
  const error = await t.throwsAsync(agent.ensure('c', small));
  t.regex(
    error?.message ?? '',
    /^no free \/24 left in the bridge range 10\.244\.32\.0\/23 for network c on this engine \(10\.244\.32\.0\/24 is taken by network mesh-n1-[ab], 10\.244\.33\.0\/24 is taken by network mesh-n1-[ab]\)$/,
  );
});

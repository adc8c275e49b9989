import test from 'ava';
import { Stacks } from '../../../agent/cluster/stacks.js';
import { StateAccess } from '../../../agent/cluster/state-access.js';
import type { RaftNode } from '../../../mesh/raft/node.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { captureLogs } from '../../helpers/logs.js';
import { nodeRecord, serviceRecord } from '../../helpers/records.js';

/** Stacks over a replica (read only: the deploys below are dry runs, nothing is proposed). */
function stacksOver(state: ClusterState): Stacks {
  const raft = { membership: { voters: ['n1'], learners: [] } } as unknown as RaftNode;
  return new Stacks(new StateAccess(state, raft, captureLogs('n1').log));
}

/** A replica whose service range holds 5 addresses, 3 of them taken by stack a's services. */
function nearlyFull(): Stacks {
  const state = new ClusterState();
  const names = ['x', 'y', 'z'];
  state.restore({
    appliedIndex: 5,
    objects: [
      [
        'settings',
        [
          {
            id: 'network',
            version: 1,
            value: { serviceRange: '10.250.99.0/29', bridgeRange: '10.240.99.0/24' },
          },
        ],
      ],
      ['stacks', [{ id: 'a', version: 2, value: { name: 'a', services: names, deployedAt: '' } }]],
      [
        'services',
        names.map((name) => ({
          id: `a.${name}`,
          version: 3,
          value: serviceRecord({ stack: 'a', name }),
        })),
      ],
    ],
  });
  return stacksOver(state);
}

function deploy(
  stacks: Stacks,
  stack: string,
  names: string[],
  prune = false,
  constraints: string[] = [],
  strict = false,
) {
  const services = names.map((name) => {
    const {
      version: _v,
      updatedAt: _u,
      ...definition
    } = serviceRecord({
      stack,
      name,
      placement: { constraints },
    });
    return definition;
  });
  return stacks.deploy({ stack, services, prune, strict, dryRun: true });
}

test('a deploy that would leave a service without an address is refused, saying how many the range holds', async (t) => {
  const stacks = nearlyFull();
  await t.notThrowsAsync(deploy(stacks, 'b', ['p', 'q']), 'five services fit');
  const error = await t.throwsAsync(deploy(stacks, 'b', ['p', 'q', 'r']));
  t.is(
    error?.message,
    "the cluster's service range 10.250.99.0/29 holds 5 service addresses, and this deploy would make 6 services: remove services or stacks first (the range is chosen at mesh init, --service-range)",
  );
  // Stack a again: what it no longer declares keeps its address unless pruned.
  await t.throwsAsync(deploy(stacks, 'a', ['x', 'p', 'q', 'r']), { message: /make 6 services/ });
  await t.notThrowsAsync(deploy(stacks, 'a', ['x', 'p', 'q', 'r'], true), 'pruned: 4 services');
});

test('a constraint no node satisfies yet is deployed to wait, saying why; --strict refuses it', async (t) => {
  const state = new ClusterState();
  state.restore({
    appliedIndex: 2,
    objects: [
      [
        'nodes',
        [
          { id: 'n1', version: 1, value: nodeRecord('n1', { labels: { disk: 'hdd' } }) },
          { id: 'n2', version: 2, value: nodeRecord('n2', { status: 'joining' }) },
        ],
      ],
    ],
  });
  const reason =
    'service db: no node satisfies node.labels.disk == ssd (n1 {"disk":"hdd"}); node n2 is still joining, its labels not known yet';
  const stacks = stacksOver(state);
  const accepted = await deploy(stacks, 'b', ['db', 'web'], false, ['node.labels.disk == ssd']);
  t.deepEqual(accepted.unplaceable, [
    { id: 'b.db', reason },
    { id: 'b.web', reason: reason.replace('service db', 'service web') },
  ]);
  t.deepEqual(
    accepted.services.map((s) => [s.id, s.change]),
    [
      ['b.db', 'created'],
      ['b.web', 'created'],
    ],
  );
  const fits = await deploy(stacks, 'b', ['db'], false, ['node.labels.disk == hdd'], true);
  t.deepEqual(fits.unplaceable, [], 'a constraint a node meets is no warning, strict or not');
  const error = await t.throwsAsync(
    deploy(stacks, 'b', ['db'], false, ['node.labels.disk == ssd'], true),
  );
  t.is(error?.message, reason);
  await t.throwsAsync(deploy(stacks, 'b', ['db'], false, ['node.labels.disk ~ ssd']), {
    message: /^service db: /,
  });
});

test('a malformed deploy request is refused naming the key, before anything is planned', async (t) => {
  const stacks = nearlyFull();
  const { version: _v, updatedAt: _u, ...definition } = serviceRecord({ stack: 'b', name: 'web' });
  const { ports: _p, ...withoutPorts } = definition;
  await t.throwsAsync(stacks.deploy({ stack: 'b', services: [withoutPorts], dryRun: true }), {
    name: 'InvalidError',
    message: 'the deploy request is malformed: services[0].ports is missing',
  });
  await t.throwsAsync(
    stacks.deploy({ stack: 'b', services: [{ ...definition, replicas: 'two' }], dryRun: true }),
    { name: 'InvalidError', message: /services\[0\]\.replicas must be a whole number/ },
  );
});

import test from 'ava';
import { Stacks } from '../../../agent/cluster/stacks.js';
import { StateAccess } from '../../../agent/cluster/state-access.js';
import type { RaftNode } from '../../../mesh/raft/node.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { captureLogs } from '../../helpers/logs.js';
import { serviceRecord, taskRecord } from '../../helpers/records.js';

/** A replica restored from a snapshot that holds a damaged service and a damaged task. */
function damagedReplica(): Stacks {
  const web = serviceRecord({ stack: 'shop' });
  const task = { ...taskRecord(1, 1, 'n1'), id: 'shop.web.1.a', serviceId: 'shop.web' };
  const state = new ClusterState();
  state.restore({
    appliedIndex: 9,
    objects: [
      [
        'stacks',
        [
          {
            id: 'shop',
            version: 1,
            value: { name: 'shop', services: ['api', 'web'], deployedAt: '' },
          },
        ],
      ],
      [
        'services',
        [
          { id: 'shop.web', version: 2, value: web },
          { id: 'shop.api', version: 2, value: { ...web, name: 'api', replicas: 'two' } },
        ],
      ],
      [
        'tasks',
        [
          { id: task.id, version: 3, value: task },
          { id: 'x', version: 4, value: 'x' },
        ],
      ],
    ],
  });
  // Reads only: nothing here proposes.
  return new Stacks(new StateAccess(state, {} as RaftNode, captureLogs('n1').log));
}

test('mesh ls lists a damaged service by ID with why, and the others as usual', (t) => {
  const [shop] = damagedReplica().list();
  t.deepEqual(
    shop?.services.map((s) => s.id),
    ['shop.api', 'shop.web'],
  );
  t.deepEqual(shop?.services[0], {
    id: 'shop.api',
    damaged: 'services/shop.api.replicas must be a whole number >= 0',
  });
  t.like(shop?.services[1], { id: 'shop.web', desired: 1, running: 0 });
});

test('mesh ps lists a damaged task as damaged, with why; a stack listing goes on without it', (t) => {
  const stacks = damagedReplica();
  const all = stacks.tasks({});
  t.deepEqual(
    all.map((row) => [row.id, row.state, row.reason]),
    [
      ['x', 'damaged', 'tasks/x must be an object'],
      ['shop.web.1.a', 'assigned', null],
    ],
  );
  t.deepEqual(
    stacks.tasks({ stack: 'shop' }).map((row) => row.id),
    ['shop.web.1.a'],
  );
});

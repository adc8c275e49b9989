/** Why a task would not go on each node: the scheduler's checks in its order, the first failed named with its fix. */
import test from 'ava';
import { nodeFits } from '../../../agent/scheduler/fit.js';
import type { ServiceSpec } from '../../../agent/scheduler/model.js';
import { nodeInfo, serviceSpec, taskRecord } from '../../helpers/records.js';

const GiB = 2 ** 30;
const node = nodeInfo;
const service = (overrides: Partial<ServiceSpec> = {}) => serviceSpec('s.web', overrides);

test('each node says the first check it fails, and the fix where there is one', (t) => {
  const fits = nodeFits(
    service({
      constraints: ['node.labels.zone == a'],
      reservations: { cpus: 1, memoryBytes: GiB },
    }),
    [
      node('n1', { status: 'down' }),
      node('n2', { availability: 'drain' }),
      node('n3', { runtimes: ['process'] }),
      node('n4', { labels: { zone: 'b' } }),
      node('n5', { labels: { zone: 'a' }, capacity: { cpus: 2, memoryBytes: 2 * GiB } }),
      node('n6', { labels: { zone: 'a' }, capacity: { cpus: 1.5, memoryBytes: 8 * GiB } }),
      node('n7', { labels: { zone: 'a' } }),
    ],
    [
      { ...taskRecord(1, 1, 'n5'), reservations: { cpus: 0, memoryBytes: 1.5 * GiB } },
      { ...taskRecord(2, 1, 'n6'), reservations: { cpus: 1, memoryBytes: 0 } },
    ],
  );
  t.deepEqual(
    fits.map((f) => [f.node, f.fits, f.check, f.fix]),
    [
      ['n1', false, 'not ready (down)', 'start its agent again, or mesh node rm it'],
      ['n2', false, 'drained', 'mesh node activate n2'],
      ['n3', false, 'no Docker Engine', 'start the Docker Engine there: its agent finds it'],
      ['n4', false, 'constraint node.labels.zone == a: it has "b"', 'mesh node label n4 zone=a'],
      [
        'n5',
        false,
        'memory short by 512 MiB (512 MiB free, 1024 MiB reserved per task)',
        'lower deploy.resources.reservations.memory, or make room',
      ],
      [
        'n6',
        false,
        'CPU short by 0.5 (0.5 free, 1 reserved per task)',
        'lower deploy.resources.reservations.cpus, or make room',
      ],
      ['n7', true, undefined, undefined],
    ],
  );
});

test('max per node and a volume on another node are said as such', (t) => {
  const [full] = nodeFits(
    service({ maxReplicasPerNode: 1 }),
    [node('n1')],
    [taskRecord(1, 1, 'n1')],
  );
  t.like(full, { fits: false, check: 'max_replicas_per_node 1 reached (1 here)' });
  const [elsewhere] = nodeFits(
    service({ pinned: { nodeId: 'n2', volume: 's_data' } }),
    [node('n1'), node('n2')],
    [],
  );
  t.like(elsewhere, { node: 'n1', fits: false, check: 'its volume s_data is on node n2' });
});

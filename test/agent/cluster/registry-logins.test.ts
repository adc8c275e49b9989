import test from 'ava';
import { loginRefusal } from '../../../agent/cluster/registry-logins.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { serviceRecord, taskRecord } from '../../helpers/records.js';

const PRIVATE = 'registry.example.com:5000';

/** w1 runs s.web (version 2 from the private registry, version 1 from Docker Hub). */
function cluster(): ClusterState {
  const state = new ClusterState();
  const web = serviceRecord({
    image: `${PRIVATE}/team/web:2`,
    version: 2,
    previousVersion: 1,
    previous: serviceRecord({ image: 'team/web:1' }),
  });
  state.apply(1, {
    op: 'batch',
    writes: [
      { op: 'put', kind: 'services', id: 's.web', value: web },
      { op: 'put', kind: 'tasks', id: 's.web.1.v2', value: taskRecord(1, 2, 'w1') },
      { op: 'put', kind: 'tasks', id: 's.web.2.v1', value: taskRecord(2, 1, 'w1') },
      {
        op: 'put',
        kind: 'tasks',
        id: 's.web.3.v2',
        value: { ...taskRecord(3, 2, 'w1'), desired: 'shutdown' },
      },
    ],
  });
  return state;
}

test("a node gets a registry's login for a task it is to run whose image comes from there", (t) => {
  t.is(loginRefusal(cluster(), { taskId: 's.web.1.v2', host: PRIVATE }, 'w1'), undefined);
});

test('another node asking for that task gets nothing', (t) => {
  t.is(
    loginRefusal(cluster(), { taskId: 's.web.1.v2', host: PRIVATE }, 'w2'),
    'task s.web.1.v2 is not one node w2 is to run',
  );
});

test('a task whose own version pulls from elsewhere gets nothing, nor a task shut down', (t) => {
  const state = cluster();
  t.is(
    loginRefusal(state, { taskId: 's.web.2.v1', host: PRIVATE }, 'w1'),
    `task s.web.2.v1 of node w1 pulls nothing from ${PRIVATE}`,
  );
  t.regex(
    loginRefusal(state, { taskId: 's.web.3.v2', host: PRIVATE }, 'w1') ?? '',
    /not one node w1 is to run/,
  );
  t.regex(loginRefusal(state, { taskId: 'nope', host: PRIVATE }, 'w1') ?? '', /not one/);
});

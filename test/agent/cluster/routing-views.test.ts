/**
 * The barrier before a task is stopped: the node stopping it asks every node up, over the
 * cluster's mTLS, whether it routes as of the write that took the task out; each node answers for
 * its own view once it does. Real transports; each node's view is a real ViewIndex.
 */
import test from 'ava';
import { RoutingViews } from '../../../agent/cluster/routing-views.js';
import type { NodeRecord } from '../../../mesh/api/nodes.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import type { Transport } from '../../../mesh/transport/transport.js';
import { ViewIndex } from '../../../proxy/view-index.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';
import { settledWithin } from '../../helpers/poll.js';
import { nodeRecord } from '../../helpers/records.js';

// This file's loopback block: 127.0.81.0/24.
const cluster = await testCluster();
/** Ample for an answer over loopback: a wait still pending after it was not answered early. */
const ANSWER_MS = 50;

/** A node's answer from its own view, as the data plane gives it. */
function answerFrom(view: ViewIndex) {
  return async (index: number, maxWaitMs: number) => {
    await view.until(index, maxWaitMs);
    return view.current >= index ? undefined : `as of ${view.current}, not ${index}`;
  };
}

/** A node: its transport on `host`, its view (as of 3), and RoutingViews over a shared state. */
async function node(
  t: { teardown: (f: () => unknown) => void },
  host: string,
  state: ClusterState,
) {
  const identity = await cluster.identity();
  const transport = await startTransport(identity, host, captureLogs(host).log);
  t.teardown(() => transport.close());
  const view = new ViewIndex(60_000);
  view.reached(3);
  t.teardown(() => view.close());
  const views = new RoutingViews(identity.nodeId, state, transport, answerFrom(view));
  return { id: identity.nodeId, transport, view, views };
}

function record(
  state: ClusterState,
  id: string,
  transport: Transport,
  overrides: Partial<NodeRecord> = {},
) {
  state.apply(state.appliedIndex + 1, {
    op: 'put',
    kind: 'nodes',
    id,
    value: nodeRecord(id, { address: transport.address, ...overrides }),
  });
}

test('the stop waits until every node up routes as of the index, itself included', async (t) => {
  const state = new ClusterState();
  const [one, two] = [await node(t, '127.0.81.1', state), await node(t, '127.0.81.2', state)];
  record(state, one.id, one.transport);
  record(state, two.id, two.transport);
  const waiting = one.views.asOf(5, 30_000);
  t.false(await settledWithin(waiting, ANSWER_MS), 'no node is as of 5 yet');
  one.view.reached(5);
  t.false(await settledWithin(waiting, ANSWER_MS), 'the other node is still behind');
  two.view.reached(6);
  t.deepEqual(await waiting, [], 'every node said so');
});

test('a node down is not asked; one up that cannot say so in time is named, with why', async (t) => {
  const state = new ClusterState();
  const one = await node(t, '127.0.81.3', state);
  const behind = await node(t, '127.0.81.4', state);
  const down = await node(t, '127.0.81.5', state);
  // An agent of an older build: it does not know the question.
  const olderIdentity = await cluster.identity();
  const older = await startTransport(olderIdentity, '127.0.81.6', captureLogs('older').log);
  t.teardown(() => older.close());
  record(state, one.id, one.transport);
  record(state, behind.id, behind.transport);
  record(state, down.id, down.transport, { status: 'down' });
  record(state, olderIdentity.nodeId, older);
  one.view.reached(5);
  const lagging = await one.views.asOf(5, 300);
  t.deepEqual(
    lagging.map((l) => l.node).sort(),
    [behind.id, olderIdentity.nodeId].sort(),
    'the node still behind and the one that did not answer; not the node down',
  );
  t.is(lagging.find((l) => l.node === behind.id)?.reason, 'as of 3, not 5');
  t.is(
    lagging.find((l) => l.node === olderIdentity.nodeId)?.reason,
    'no handler for request type "routes-as-of/v1"',
  );
});

test('a question that is not well formed is refused, not waited on', async (t) => {
  const state = new ClusterState();
  const one = await node(t, '127.0.81.7', state);
  const two = await node(t, '127.0.81.8', state);
  await t.throwsAsync(
    two.transport.request(one.transport.address, 'routes-as-of/v1', { index: 'all' }),
    { message: /routes-as-of needs/ },
  );
});

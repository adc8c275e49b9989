import { EventEmitter } from 'node:events';
import test from 'ava';
import { QueueRefusal, ReplicaQueue } from '../../../proxy/http/replica-queue.js';
import { EndpointCounters, type Lease, pick } from '../../../proxy/l4/balancer.js';
import { endpoint } from '../../helpers/endpoints.js';

/** A client that stays unless told to leave. */
function client() {
  const events = new EventEmitter();
  const onLeave = (listener: () => void) => {
    events.once('leave', listener);
    return () => events.off('leave', listener);
  };
  return {
    onLeave,
    leave: () => events.emit('leave'),
    listening: () => events.listenerCount('leave'),
  };
}

function queueOf(replicas: string[], limits = { perReplica: 1, length: 10, waitMs: 60_000 }) {
  const counters = new EndpointCounters(0);
  let listed = replicas.map(endpoint);
  const queue = new ReplicaQueue(counters, limits);
  const seat = (who = client()) => queue.seat('s.web', () => listed, new Set(), who.onLeave);
  return { counters, queue, seat, list: (ids: string[]) => (listed = ids.map(endpoint)) };
}

test('a full replica is not picked, even healthy beside one that just failed', (t) => {
  const counters = new EndpointCounters(0);
  counters.get('a').active = 2;
  counters.get('b').active = 1;
  counters.get('b').failedUntil = 10;
  const live = (id: string) => counters.get(id);
  const both = [endpoint('a'), endpoint('b')];
  t.is(pick(both, live, 0, new Set(), 0, 2)?.taskId, 'b');
  counters.get('b').active = 2;
  t.is(pick(both, live, 0, new Set(), 0, 2), undefined, 'every one full: none');
});

test('requests past the replicas limit wait, and take freed seats in the order they came', async (t) => {
  const { seat, queue } = queueOf(['a', 'b']);
  const first = (await seat()) as Lease;
  const second = (await seat()) as Lease;
  t.not(first.endpoint.taskId, second.endpoint.taskId, 'one request on each replica');
  const order: string[] = [];
  const third = seat().then((lease) => {
    order.push('third');
    return lease as Lease;
  });
  const fourth = seat().then((lease) => {
    order.push('fourth');
    return lease as Lease;
  });
  t.is(queue.depth('s.web'), 2, 'both wait');
  second.release();
  const thirdLease = await third;
  t.is(thirdLease.endpoint.taskId, second.endpoint.taskId, 'the third gets the freed replica');
  t.is(queue.depth('s.web'), 1);
  first.release();
  t.is((await fourth).endpoint.taskId, first.endpoint.taskId);
  t.deepEqual(order, ['third', 'fourth']);
});

test('a full queue refuses at once; a wait that runs out is refused with the reason', async (t) => {
  const { seat } = queueOf(['a'], { perReplica: 1, length: 1, waitMs: 50 });
  await seat();
  const waiting = seat();
  await t.throwsAsync(seat(), {
    instanceOf: QueueRefusal,
    message: 'every replica of s.web is busy and 1 requests already wait',
  });
  await t.throwsAsync(waiting, {
    instanceOf: QueueRefusal,
    message: 'every replica of s.web stayed busy for 0.05 s',
  });
});

test('a client that leaves while waiting gives up its place', async (t) => {
  const { seat, queue } = queueOf(['a']);
  const held = (await seat()) as Lease;
  const gone = client();
  const leaving = seat(gone);
  const staying = seat();
  gone.leave();
  await t.throwsAsync(leaving, { message: 'the client left while waiting' });
  t.is(gone.listening(), 0, 'nothing listens for it any more');
  held.release();
  t.is(((await staying) as Lease).endpoint.taskId, 'a', 'the next in line is served');
  t.is(queue.depth('s.web'), 0);
});

test('a replica that joins the table seats those waiting', async (t) => {
  const { seat, queue, list } = queueOf(['a']);
  await seat();
  const waiting = seat();
  list(['a', 'b']);
  queue.refresh();
  t.is(((await waiting) as Lease).endpoint.taskId, 'b');
});

test('a request that tried every replica is told so, not queued', async (t) => {
  const { counters, queue } = queueOf(['a']);
  counters.get('a').active = 1;
  const tried = new Set(['a']);
  t.is(await queue.seat('s.web', () => [endpoint('a')], tried, client().onLeave), undefined);
  t.is(queue.depth('s.web'), 0);
});

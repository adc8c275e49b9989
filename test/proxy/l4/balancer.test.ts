import test from 'ava';
import {
  among,
  EndpointCounters,
  FAIL_TIMEOUT_MS,
  pick,
  tryEndpoints,
} from '../../../proxy/l4/balancer.js';
import { endpoint } from '../../helpers/endpoints.js';

const endpoints = [endpoint('a'), endpoint('b'), endpoint('c')];

test('the endpoint with the fewest connections is picked', (t) => {
  const counters = new EndpointCounters();
  counters.get('a').active = 2;
  counters.get('b').active = 0;
  counters.get('c').active = 1;
  t.is(pick(endpoints, (id) => counters.get(id), 0, new Set(), 0)?.taskId, 'b');
});

test('equals are picked in turn', (t) => {
  const counters = new EndpointCounters();
  const picked = [0, 1, 2, 3].map(
    () => pick(endpoints, (id) => counters.get(id), 0, new Set(), counters.nextTurn())?.taskId,
  );
  t.deepEqual([...new Set(picked)].sort(), ['a', 'b', 'c']);
});

test('each node starts its turn at random: first connections through fresh nodes spread', (t) => {
  const first = new Set(
    Array.from({ length: 30 }, () => {
      const counters = new EndpointCounters();
      return pick(endpoints, (id) => counters.get(id), 0, new Set(), counters.nextTurn())?.taskId;
    }),
  );
  // The same one 30 times in a row from a random start: (1/3)^29.
  t.true(first.size > 1, `the first pick of 30 nodes: ${[...first].join(', ')}`);
});

test('an endpoint that failed to connect is passed over until its timeout', (t) => {
  const counters = new EndpointCounters();
  counters.get('a').failedUntil = 1000 + FAIL_TIMEOUT_MS;
  counters.get('b').active = 5;
  counters.get('c').active = 5;
  t.not(pick(endpoints, (id) => counters.get(id), 1000, new Set(), 0)?.taskId, 'a');
  t.is(
    pick(endpoints, (id) => counters.get(id), 1000 + FAIL_TIMEOUT_MS, new Set(), 0)?.taskId,
    'a',
  );
});

test('when every endpoint failed recently, one is tried still', (t) => {
  const counters = new EndpointCounters();
  for (const e of endpoints) counters.get(e.taskId).failedUntil = 10_000;
  t.truthy(pick(endpoints, (id) => counters.get(id), 0, new Set(), 0));
});

test('endpoints tried for this connection are not tried again', (t) => {
  const counters = new EndpointCounters();
  t.is(pick(endpoints, (id) => counters.get(id), 0, new Set(['a', 'b']), 0)?.taskId, 'c');
  t.is(
    pick(endpoints, (id) => counters.get(id), 0, new Set(['a', 'b', 'c']), 0),
    undefined,
  );
});

test('counters of tasks gone from the table are forgotten once idle', (t) => {
  const counters = new EndpointCounters();
  counters.get('a').active = 1;
  counters.get('b').failedUntil = 5;
  counters.retain(new Set(['c']));
  t.is(counters.get('a').active, 1, 'a connection still open keeps its count');
  t.is(counters.get('b').failedUntil, 0);
});

test('a lease counts its endpoint until released, once: a count never goes below zero', (t) => {
  const counters = new EndpointCounters(0);
  const lease = counters.acquire([endpoint('a')], new Set());
  t.is(counters.get('a').active, 1);
  lease?.release();
  lease?.release();
  t.is(counters.get('a').active, 0);
});

test('the attempt loop moves on from an endpoint that passes, marked or not, and stops at the limit', async (t) => {
  const counters = new EndpointCounters(0);
  const seen: string[] = [];
  const taken = await tryEndpoints(among(counters, endpoints), 2, async (lease, n) => {
    seen.push(`${n}:${lease.endpoint.taskId}`);
    if (n === 1) lease.failed();
    return { again: new Error(`no ${lease.endpoint.taskId}`) };
  });
  t.is(seen.length, 2, 'two attempts, as asked');
  t.not(seen[0]?.slice(2), seen[1]?.slice(2), 'each at another endpoint');
  t.like(taken, { lastFailure: { message: `no ${seen[1]?.slice(2)}` } });
  const first = seen[0]?.slice(2) as string;
  t.true(counters.get(first).failedUntil > Date.now(), 'the one the attempt marked is passed over');
  for (const e of endpoints) t.is(counters.get(e.taskId).active, 0, 'every lease released');
});

test('the endpoint that does the work stays leased to the caller; a throw counts as passing', async (t) => {
  const counters = new EndpointCounters(0);
  const taken = await tryEndpoints(among(counters, endpoints), 3, async (lease, n) => {
    if (n === 1) throw new Error('connect refused');
    return { done: lease.endpoint.taskId };
  });
  if (!('lease' in taken)) return t.fail('an endpoint took it');
  t.is(counters.get(taken.value).active, 1);
  taken.lease.release();
  t.is(counters.get(taken.value).active, 0);
  const none = await tryEndpoints(among(counters, []), 3, async () => ({ done: 1 }));
  t.deepEqual(none, { lastFailure: undefined }, 'no endpoint: nothing tried');
});

import test from 'ava';
import { Lifecycle } from '../../agent/lifecycle.js';
import { captureLogs } from '../helpers/logs.js';

test('parts stop in the reverse of the order they started', async (t) => {
  const events: string[] = [];
  const lifecycle = new Lifecycle(captureLogs('n1').log);
  for (const part of ['transport', 'raft', 'reconciler'])
    await lifecycle.start(
      part,
      () => events.push(`start ${part}`),
      () => events.push(`stop ${part}`),
    );
  lifecycle.add('runtimes', () => events.push('stop runtimes'));
  await lifecycle.stopAll();
  t.deepEqual(events, [
    'start transport',
    'start raft',
    'start reconciler',
    'stop runtimes',
    'stop reconciler',
    'stop raft',
    'stop transport',
  ]);
  await lifecycle.stopAll();
  t.is(events.length, 7, 'a second stop stops nothing again');
});

test('a part that fails to start is not stopped; one that fails to stop is logged, the rest stop', async (t) => {
  const events: string[] = [];
  const logs = captureLogs('n1');
  const lifecycle = new Lifecycle(logs.log);
  await lifecycle.start(
    'transport',
    () => undefined,
    () => events.push('stop transport'),
  );
  await lifecycle.start(
    'raft',
    () => undefined,
    () => {
      throw new Error('raft would not stop');
    },
  );
  await t.throwsAsync(
    lifecycle.start(
      'control API',
      () => Promise.reject(new Error('socket taken')),
      () => events.push('stop control API'),
    ),
    { message: 'socket taken' },
  );
  await lifecycle.stopAll();
  t.deepEqual(events, ['stop transport']);
  await logs.waitFor((line) => line.part === 'raft' && /did not stop cleanly/.test(line.msg));
  t.pass();
});

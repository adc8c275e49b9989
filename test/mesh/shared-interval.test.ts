import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { everyShared } from '../../mesh/shared-interval.js';
import { eventually } from '../helpers/poll.js';

const PERIOD_MS = 10;

test('every callback of a period is called, each until it stops', async (t) => {
  const calls = { a: 0, b: 0 };
  const stopA = everyShared(PERIOD_MS, () => calls.a++);
  const stopB = everyShared(PERIOD_MS, () => calls.b++);
  await eventually(() => calls.a >= 3 && calls.b >= 3, { what: 'both called three times' });
  stopA();
  const stoppedAt = calls.a;
  const bBefore = calls.b;
  await eventually(() => calls.b >= bBefore + 3, { what: 'b called on after a stopped' });
  t.is(calls.a, stoppedAt, 'a stopped callback is not called again');
  stopB();
  stopB(); // a second stop is harmless
});

test('the timer stops with its last callback, and a later one starts it again', async (t) => {
  let calls = 0;
  const stop = everyShared(PERIOD_MS, () => calls++);
  await eventually(() => calls >= 1, { what: 'called once' });
  stop();
  const stoppedAt = calls;
  // Nothing to wait on for a call that must not come: a few periods is the claim.
  await sleep(PERIOD_MS * 5);
  t.is(calls, stoppedAt);
  let later = 0;
  const stopLater = everyShared(PERIOD_MS, () => later++);
  await eventually(() => later >= 2, { what: 'a new callback called' });
  stopLater();
});

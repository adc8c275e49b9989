import test from 'ava';
import { afterExit } from '../../../agent/reconciler/restart.js';
import type { RestartPolicy } from '../../../mesh/api/services.js';

const policy = (p: Partial<RestartPolicy>): RestartPolicy => ({
  condition: 'any',
  delayMs: 5000,
  maxAttempts: 0,
  windowMs: 0,
  ...p,
});

test('condition any restarts after the delay, whatever the exit code', (t) => {
  t.like(afterExit(policy({}), 0, 'exited with code 0', [], 0), { restart: true, delayMs: 5000 });
  t.like(afterExit(policy({}), 137, 'exited with code 137', [], 0), { restart: true });
});

test('on-failure leaves a clean exit complete; none never restarts', (t) => {
  t.like(afterExit(policy({ condition: 'on-failure' }), 0, 'done', [], 0), {
    restart: false,
    state: 'complete',
  });
  t.like(afterExit(policy({ condition: 'on-failure' }), 1, 'boom', [], 0), { restart: true });
  t.like(afterExit(policy({ condition: 'none' }), 1, 'boom', [], 0), {
    restart: false,
    state: 'failed',
  });
});

test('max_attempts counts restarts within the window, then the task fails with why', (t) => {
  const p = policy({ maxAttempts: 2, windowMs: 60_000 });
  const now = 100_000;
  t.like(afterExit(p, 1, 'boom', [now - 90_000, now - 70_000], now), { restart: true });
  const gaveUp = afterExit(p, 1, 'exited with code 1', [now - 30_000, now - 10_000], now);
  t.like(gaveUp, { restart: false, state: 'failed' });
  t.is(
    gaveUp.reason,
    'exited with code 1; gave up after 2 restarts within 1m (restart_policy.max_attempts)',
  );
});

import test from 'ava';
import { RunAgain } from '../../mesh/run-again.js';

/** A pass that waits until released, counting its runs. */
function gatedPasses() {
  const releases: Array<() => void> = [];
  let runs = 0;
  const pass = () =>
    new Promise<void>((resolve) => {
      runs += 1;
      releases.push(resolve);
    });
  return { pass, runs: () => runs, release: () => releases.shift()?.() };
}

test('asked while a pass runs, it runs once more after it, however often it was asked', async (t) => {
  const gated = gatedPasses();
  const runner = new RunAgain(gated.pass, (error) => t.fail(error.message));
  runner.request();
  runner.request();
  runner.request();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(gated.runs(), 1, 'one pass at a time');
  gated.release();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(gated.runs(), 2, 'then one more, for all the asks meanwhile');
  const idle = runner.idle();
  gated.release();
  await idle;
  t.is(gated.runs(), 2);
});

test('a failing pass is reported, and the next ask runs again', async (t) => {
  const failures: string[] = [];
  let runs = 0;
  const runner = new RunAgain(
    async () => {
      runs += 1;
      if (runs === 1) throw new Error('first pass failed');
    },
    (error) => failures.push(error.message),
  );
  runner.request();
  await runner.idle();
  runner.request();
  await runner.idle();
  t.deepEqual(failures, ['first pass failed']);
  t.is(runs, 2);
});

test('a pass that asks again as it starts is not entered twice: it runs once more after', async (t) => {
  let depth = 0;
  let deepest = 0;
  let runs = 0;
  const runner: RunAgain = new RunAgain(
    async () => {
      runs += 1;
      depth += 1;
      deepest = Math.max(deepest, depth);
      // As a write applied at once does: its watcher asks for another pass, synchronously.
      if (runs < 3) runner.request();
      await Promise.resolve();
      depth -= 1;
    },
    (error) => t.fail(error.message),
  );
  runner.request();
  await runner.idle();
  t.is(deepest, 1, 'never two passes at once');
  t.is(runs, 3);
});

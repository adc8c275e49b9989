import test from 'ava';
import { runScenario } from '../../sim/swim-scenario.js';

// Quick mode of `npm run bench:gossip`: the same phases at 64 nodes.
for (const seed of [1, 2, 3]) {
  test(`64 nodes at 1% loss, seed ${seed}: converge, spread, detect, no false positives`, (t) => {
    const report = runScenario({ nodes: 64, seed, loss: 0.01, steadyMs: 10_000 });
    t.not(report.joinConvergedMs, null, 'every node came to know every node');
    t.true(
      (report.disseminationP999Ms ?? Infinity) <= 2000,
      `dissemination ${report.disseminationP999Ms} ms`,
    );
    t.not(report.failureDetectedAllMs, null, 'the crash was detected everywhere');
    t.true(
      (report.failureDetectedFirstMs ?? 0) >= 4000 * Math.log10(64),
      'not before the suspicion minimum',
    );
    t.is(report.falsePositives, 0);
    t.is(report.suspectedLiveNodes, 0);
  });
}

test('64 nodes with one node stalled for 2 s: suspected at most, never declared dead', (t) => {
  const report = runScenario({ nodes: 64, seed: 4, loss: 0.01, stallMs: 2000, steadyMs: 10_000 });
  t.is(report.falsePositives, 0);
  t.true(report.suspectedLiveNodes <= 1);
});

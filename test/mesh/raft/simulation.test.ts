import test from 'ava';
import { Raft } from '../../../mesh/raft/raft.js';
import { simulateRaft } from '../../bench/sim-raft.js';
import { checkLinearizable } from '../../sim/linearizability.js';
import { RaftSim } from '../../sim/raft-sim.js';

// Quick mode of `npm run sim:raft`.
test('60 seeds of faults: no safety violation, every history linearizable', (t) => {
  const summary = simulateRaft(1, 60, 20_000);
  t.is(summary.firstViolation, null);
  t.is(summary.violations, 0);
  t.is(summary.linearizabilityViolations, 0);
  t.true(summary.committedEntries > 1000, 'the clusters made progress');
  t.true(summary.snapshotsInstalled > 0, 'snapshots were sent');
});

/** Grants votes without Raft's up-to-date check. */
class UnsafeRaft extends Raft {
  protected override candidateIsUpToDate(): boolean {
    return true;
  }
}

test('the simulator catches a Raft without the election restriction', (t) => {
  let caught: string | undefined;
  for (let seed = 1; seed <= 100 && !caught; seed++) {
    const report = new RaftSim({
      seed,
      nodes: seed % 2 === 0 ? 5 : 3,
      durationMs: 20_000,
      factory: (o) => new UnsafeRaft(o),
    }).run();
    const linear = checkLinearizable(report.history);
    caught = report.violations[0] ?? (linear.ok ? undefined : `seed ${seed}: not linearizable`);
  }
  t.truthy(caught, 'some seed breaks an invariant');
  t.log(caught);
});

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

test('a learner that forges Raft messages of every type: no violation, nothing it wrote applied', (t) => {
  let refused = 0;
  for (let seed = 1; seed <= 100; seed++) {
    const report = new RaftSim({
      seed,
      nodes: seed % 2 === 0 ? 5 : 3,
      durationMs: 15_000,
      adversary: true,
    }).run();
    t.deepEqual(report.violations, [], `seed ${seed}`);
    t.true(checkLinearizable(report.history).ok, `seed ${seed}: linearizable`);
    t.true(report.committed > 0, `seed ${seed}: the cluster made progress`);
    refused += report.refused;
  }
  t.true(refused > 1000, `the voters refused the learner's messages (${refused})`);
});

test('without the role check, the simulator catches the forging learner', (t) => {
  let caught: string | undefined;
  for (let seed = 1; seed <= 20 && !caught; seed++) {
    const report = new RaftSim({
      seed,
      nodes: 3,
      durationMs: 15_000,
      adversary: true,
      roleCheck: false,
    }).run();
    caught = report.violations[0];
  }
  t.truthy(caught, 'some seed lets the learner write');
  t.log(caught);
});

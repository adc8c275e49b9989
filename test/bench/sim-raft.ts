/**
 * Raft under the deterministic storm of test/sim/raft-sim.ts, seed after seed, with every safety
 * invariant checked on every step and each run's client history checked for linearizability.
 *
 *   npm run sim:raft -- --seeds 5000 [--first 1] [--duration-ms 20000] [--adversary] [--json]
 *
 * --adversary: the learner also forges Raft messages of every type (see RaftSim).
 */
import { checkLinearizable } from '../sim/linearizability.js';
import { RaftSim } from '../sim/raft-sim.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
  return value;
}

export interface SimRaftSummary {
  seeds: number;
  steps: number;
  /** Every failure: safety invariants broken on some step, plus non-linearizable histories. */
  violations: number;
  invariantViolations: number;
  linearizabilityViolations: number;
  elections: number;
  committedEntries: number;
  operations: number;
  unknownOutcomes: number;
  snapshotsInstalled: number;
  firstViolation: string | null;
}

/** Runs seeds [first, first + seeds), three- and five-node clusters alternately. */
export function simulateRaft(
  first: number,
  seeds: number,
  durationMs: number,
  adversary = false,
): SimRaftSummary {
  const summary: SimRaftSummary = {
    seeds,
    steps: 0,
    violations: 0,
    invariantViolations: 0,
    linearizabilityViolations: 0,
    elections: 0,
    committedEntries: 0,
    operations: 0,
    unknownOutcomes: 0,
    snapshotsInstalled: 0,
    firstViolation: null,
  };
  for (let seed = first; seed < first + seeds; seed++) {
    const report = new RaftSim({
      seed,
      nodes: seed % 2 === 0 ? 5 : 3,
      durationMs,
      adversary,
    }).run();
    summary.steps += report.steps;
    summary.invariantViolations += report.violations.length;
    summary.elections += report.elections;
    summary.committedEntries += report.committed;
    summary.operations += report.operations;
    summary.unknownOutcomes += report.unknownOutcomes;
    summary.snapshotsInstalled += report.snapshotsInstalled;
    summary.firstViolation ??= report.violations[0] ?? null;
    const linear = checkLinearizable(report.history);
    if (!linear.ok) {
      summary.linearizabilityViolations += 1;
      if (linear.undecided)
        summary.firstViolation ??= `seed ${seed}: linearizability undecided within budget`;
      summary.firstViolation ??= `seed ${seed}: history of key ${linear.key} is not linearizable`;
    }
  }
  summary.violations = summary.invariantViolations + summary.linearizabilityViolations;
  return summary;
}

if (process.argv[1]?.endsWith('sim-raft.js')) {
  const started = Date.now();
  const summary = simulateRaft(
    option('first', 1),
    option('seeds', 100),
    option('duration-ms', 20_000),
    process.argv.includes('--adversary'),
  );
  const result = { ...summary, wallMs: Date.now() - started };
  console.log(
    process.argv.includes('--json') ? JSON.stringify(result) : JSON.stringify(result, null, 2),
  );
  if (summary.violations > 0) process.exitCode = 1;
}

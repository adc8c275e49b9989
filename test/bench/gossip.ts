/**
 * SWIM at scale in the deterministic simulator, with memberlist's LAN defaults, beside the bounds
 * memberlist's own formulas give for the same settings.
 *
 *   npm run bench:gossip -- --nodes 1000 --loss 0.01 --seed 1 [--stall-ms 2000] [--json]
 */
import {
  LAN_DEFAULTS,
  pushPullIntervalMs,
  retransmitLimit,
  suspicionMinMs,
} from '../../mesh/membership/config.js';
import { runScenario } from '../sim/swim-scenario.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
  return value;
}

const nodes = option('nodes', 1000);
const started = Date.now();
const report = runScenario({
  nodes,
  seed: option('seed', 1),
  loss: option('loss', 0.01),
  stallMs: option('stall-ms', 0),
});
const round = (value: number | null) => (value === null ? null : Math.round(value));
const minMs = suspicionMinMs(LAN_DEFAULTS, nodes);
const result = {
  ...report,
  joinConvergedMs: round(report.joinConvergedMs),
  disseminationP999Ms: round(report.disseminationP999Ms),
  failureDetectedFirstMs: round(report.failureDetectedFirstMs),
  failureDetectedAllMs: round(report.failureDetectedAllMs),
  // What memberlist's formulas give for the same N and settings: detection takes a probe round
  // plus a suspicion between min (enough confirmations) and max (none).
  memberlistBounds: {
    suspicionMinMs: Math.round(minMs),
    suspicionMaxMs: Math.round(minMs * LAN_DEFAULTS.suspicionMaxTimeoutMult),
    retransmitLimit: retransmitLimit(LAN_DEFAULTS, nodes),
    pushPullIntervalMs: pushPullIntervalMs(LAN_DEFAULTS, nodes),
  },
  wallMs: Date.now() - started,
};
console.log(
  process.argv.includes('--json') ? JSON.stringify(result) : JSON.stringify(result, null, 2),
);

/**
 * The voters' key outlives the node that made the cluster: it is killed the moment the third voter
 * is seated, trial after trial, and each time both survivors make tokens at once, admit a new node
 * and rotate the join secret (test/helpers/seating.ts). Loopback only: 127.0.59.1-4.
 *
 *   npm run bench:seating -- [--trials 20] [--json]
 */
import { LocalCluster } from '../helpers/local-cluster.js';
import { killFirstNodeAtThirdSeat } from '../helpers/seating.js';

const at = process.argv.indexOf('--trials');
const trials = at >= 0 ? Number(process.argv[at + 1]) : 20;
const HOSTS = ['127.0.59.1', '127.0.59.2', '127.0.59.3', '127.0.59.4'];
const cluster = await LocalCluster.create('bench-seating');
const results: Array<{ trial: number; seatedMs?: number; recoveredMs?: number; failure?: string }> =
  [];
try {
  for (let trial = 1; trial <= trials; trial++) {
    try {
      results.push({ trial, ...(await killFirstNodeAtThirdSeat(cluster, HOSTS, `b${trial}-`)) });
    } catch (error) {
      results.push({ trial, failure: (error as Error).message });
    }
    if (!process.argv.includes('--json')) console.log(JSON.stringify(results.at(-1)));
  }
} finally {
  await cluster.close();
}
const failures = results.filter((r) => r.failure).length;
const summary = { trials, failures, results };
console.log(
  process.argv.includes('--json') ? JSON.stringify(summary) : JSON.stringify({ trials, failures }),
);
if (failures > 0) process.exitCode = 1;

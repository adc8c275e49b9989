/**
 * The voters' key is never lost: a learner is seated only once it holds it. Real agents on this
 * file's loopback block (127.0.58.0/24); the node that made the cluster is killed the moment the
 * third voter is seated, again and again (`npm run bench:seating` runs the 20 trials of the
 * full mode; here, a few).
 */
import test from 'ava';
import { LocalCluster } from '../../helpers/local-cluster.js';
import { killFirstNodeAtThirdSeat } from '../../helpers/seating.js';

const HOSTS = ['127.0.58.1', '127.0.58.2', '127.0.58.3', '127.0.58.4'];
const TRIALS = 2;
const cluster = await LocalCluster.create('seating');
test.after.always(() => cluster.close());

test('the first node killed as the third voter is seated: both survivors make tokens, admit a node, rotate', async (t) => {
  for (let trial = 1; trial <= TRIALS; trial++) {
    const { seatedMs, recoveredMs } = await killFirstNodeAtThirdSeat(cluster, HOSTS, `t${trial}-`);
    t.log(`trial ${trial}: seated at ${seatedMs} ms, recovered at ${recoveredMs} ms`);
  }
  t.pass();
});

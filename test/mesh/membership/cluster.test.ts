import test from 'ava';
import { LAN_DEFAULTS } from '../../../mesh/membership/config.js';
import type { MemberStatus } from '../../../mesh/membership/messages.js';
import { SwimSim, simMeta } from '../../sim/swim-sim.js';

function cluster(size: number, seed: number, options: { loss?: number } = {}) {
  const sim = new SwimSim({ seed, loss: options.loss ?? 0 });
  const ids = Array.from({ length: size }, (_, i) => `m${i}`);
  sim.start('m0');
  for (const id of ids.slice(1)) sim.start(id, ['m0']);
  const statusAt = (observer: string, id: string): MemberStatus | undefined =>
    sim.nodes.get(observer)?.swim.member(id)?.status;
  /** Runs until the observers (default: every other live node) see `about` in `status`. */
  const until = (about: string, status: MemberStatus, withinMs: number, among?: string[]) => {
    const deadline = sim.now + withinMs;
    const observers = () =>
      sim
        .liveNodes()
        .filter((n) => n.id !== about && (among === undefined || among.includes(n.id)));
    const reached = sim.run(deadline, () =>
      observers().every((n) => statusAt(n.id, about) === status),
    );
    if (!reached) {
      const seen = observers()
        .map((n) => `${n.id}:${statusAt(n.id, about)}`)
        .join(' ');
      throw new Error(`${about} not ${status} everywhere within ${withinMs} ms (${seen})`);
    }
    return sim.now;
  };
  return { sim, ids, statusAt, until };
}

/** Every status any member sees `id` in, from now on. */
function statusesSeen(sim: SwimSim, id: string): Set<MemberStatus> {
  const statuses = new Set<MemberStatus>();
  sim.observe((_observer, { member }) => {
    if (member.id === id) statuses.add(member.status);
  });
  return statuses;
}

test('nodes joining through one seed all come to know each other', (t) => {
  const { sim, ids, statusAt } = cluster(8, 1);
  t.true(sim.run(5000, () => ids.every((a) => ids.every((b) => statusAt(a, b) === 'alive'))));
  t.deepEqual(sim.violations, []);
});

test('a crashed node is suspected, then declared dead by all, within the suspicion bounds', (t) => {
  const { sim, until } = cluster(5, 2);
  sim.run(5000);
  const crashedAt = sim.now;
  sim.crash('m3');
  // Each node probes each of its 4 peers once per 4-second cycle.
  until('m3', 'suspect', 6000);
  // 5 nodes: suspicion lasts 4 s (4 x max(1, log10 5) x 1 s) and expects no confirmations.
  const deadAt = until('m3', 'dead', 8000);
  t.true(deadAt - crashedAt >= 4000, `declared dead after ${deadAt - crashedAt} ms`);
  t.deepEqual(sim.violations, []);
});

test('a restarted node is alive again everywhere, with a higher incarnation', (t) => {
  const { sim, until } = cluster(5, 3);
  sim.run(5000);
  sim.crash('m2');
  until('m2', 'dead', 15_000);
  const before = sim.nodes.get('m0')?.swim.member('m2')?.incarnation ?? -1;
  sim.start('m2', ['m0']);
  until('m2', 'alive', 5000);
  t.true((sim.nodes.get('m1')?.swim.member('m2')?.incarnation ?? -1) > before);
  t.deepEqual(sim.violations, []);
});

test('a node that leaves is shown as left, never dead', (t) => {
  const { sim, until } = cluster(6, 4);
  const statuses = statusesSeen(sim, 'm4');
  sim.run(5000);
  sim.leave('m4');
  sim.run(sim.now + 1000);
  sim.crash('m4'); // the process exits after announcing it
  until('m4', 'left', 3000);
  sim.run(sim.now + 30_000);
  t.false(statuses.has('dead'));
  t.false(statuses.has('suspect'));
});

test('a metadata change while leaving does not undo the leave', (t) => {
  const { sim, until } = cluster(6, 7);
  const statuses = statusesSeen(sim, 'm4');
  sim.run(5000);
  sim.leave('m4');
  sim.run(sim.now + 200);
  sim.updateMeta('m4', { ...simMeta('m4'), labels: { leaving: 'yes' } });
  sim.run(sim.now + 800);
  sim.crash('m4');
  until('m4', 'left', 3000);
  sim.run(sim.now + 30_000);
  t.deepEqual([...statuses].sort(), ['alive', 'left']);
});

test('a metadata change reaches everybody with a new incarnation', (t) => {
  const { sim, ids } = cluster(10, 5, { loss: 0.05 });
  sim.run(5000);
  sim.updateMeta('m7', { ...simMeta('m7'), labels: { zone: 'b' } });
  const everywhere = () =>
    ids.every((id) => sim.nodes.get(id)?.swim.member('m7')?.meta.labels.zone === 'b');
  t.true(sim.run(sim.now + 2000, everywhere));
});

test('a falsely suspected node refutes, and nobody declares it dead', (t) => {
  const { sim, until } = cluster(5, 6);
  sim.run(5000);
  sim.stall('m1', 2500); // slower than a probe round, far shorter than the suspicion timeout
  until('m1', 'suspect', 3000);
  until('m1', 'alive', 5000);
  t.true((sim.nodes.get('m0')?.swim.member('m1')?.incarnation ?? 0) >= 1);
  sim.run(sim.now + 20_000);
  t.is(sim.nodes.get('m0')?.swim.member('m1')?.status, 'alive');
  t.deepEqual(sim.violations, []);
});

test('after a long partition each side declares the other dead, and after healing all are alive', (t) => {
  const { sim, ids, statusAt, until } = cluster(6, 7);
  sim.run(5000);
  const [left, right] = [ids.slice(0, 3), ids.slice(3)];
  sim.network.partition([left, right]);
  until('m5', 'dead', 30_000, left);
  until('m0', 'dead', 30_000, right);
  // Longer than gossip-to-the-dead, so only reconnect attempts can bring them back.
  sim.run(sim.now + 40_000);
  t.is(statusAt('m5', 'm0'), 'dead');
  sim.network.heal();
  const allAlive = () => ids.every((a) => ids.every((b) => statusAt(a, b) === 'alive'));
  t.true(sim.run(sim.now + 70_000, allAlive), 'everyone alive again after the heal');
  t.deepEqual(sim.violations, []);
});

test('the same seed replays the same run', (t) => {
  const trace = (seed: number) => {
    const { sim } = cluster(12, seed, { loss: 0.02 });
    const lines: string[] = [];
    sim.observe((observer, { member }, now) =>
      lines.push(`${now.toFixed(3)} ${observer} ${member.id} ${member.status}`),
    );
    sim.run(4000);
    sim.crash('m5');
    sim.run(30_000);
    return lines;
  };
  t.deepEqual(trace(9), trace(9));
  t.notDeepEqual(trace(9), trace(10));
});

test('a broken link gets its member probed at once: a crash is suspected within one probe round', (t) => {
  const { sim, ids, statusAt } = cluster(20, 7);
  t.true(sim.run(10_000, () => ids.every((a) => statusAt(a, 'm13') === 'alive')));
  sim.crash('m13');
  const brokenAt = sim.now;
  sim.linkBroken('m0', 'm13');
  const { probeIntervalMs } = LAN_DEFAULTS;
  t.true(
    sim.run(brokenAt + probeIntervalMs + 50, () => statusAt('m0', 'm13') === 'suspect'),
    'm0 suspects m13 within one probe interval of the broken link',
  );
  // A hint about a healthy member only costs a probe: it answers and stays alive.
  sim.linkBroken('m0', 'm5');
  sim.run(sim.now + 3 * probeIntervalMs);
  t.is(statusAt('m0', 'm5'), 'alive');
  t.deepEqual(sim.violations, []);
});

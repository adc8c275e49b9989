import type { SwimConfig } from '../../mesh/membership/config.js';
import { seededRandom } from '../../mesh/random.js';
import { SwimSim, simMeta } from './swim-sim.js';

export interface ScenarioOptions {
  nodes: number;
  seed: number;
  loss: number;
  /** Stall one node this long during the steady window (0: none). */
  stallMs?: number;
  /** Length of the steady window over which traffic is counted. */
  steadyMs?: number;
  latencyMs?: [number, number];
  config?: Partial<SwimConfig>;
}

export interface ScenarioReport {
  nodes: number;
  seed: number;
  loss: number;
  stallMs: number;
  /** Every node knows every node as live, counted from the first start. */
  joinConvergedMs: number | null;
  /** A metadata change known to 99.9% of the other nodes. */
  disseminationP999Ms: number | null;
  /** A crashed node declared dead by the first node, and by 99.9% of the others. */
  failureDetectedFirstMs: number | null;
  failureDetectedAllMs: number | null;
  /** Distinct live nodes that anybody ever declared dead. */
  falsePositives: number;
  /** Distinct live nodes that anybody suspected (and that refuted it): what Lifeguard keeps low. */
  suspectedLiveNodes: number;
  msgsPerNodePerSec: number;
  simulatedMs: number;
}

const JOIN_SPREAD_MS = 1000;

/** Runs the phases in order on one simulated cluster. Deterministic for a given seed. */
export function runScenario(options: ScenarioOptions): ScenarioReport {
  const { nodes: n, seed, loss } = options;
  const stallMs = options.stallMs ?? 0;
  const steadyMs = options.steadyMs ?? 20_000;
  const sim = new SwimSim({ seed, loss, latencyMs: options.latencyMs, config: options.config });
  const random = seededRandom(seed ^ 0x5eed);
  const ids = Array.from({ length: n }, (_, i) => `n${String(i).padStart(4, '0')}`);
  const quorum = (others: number) => Math.ceil(others * 0.999);

  // Who each node believes to be live, and how many nodes believe in everybody.
  const knownLive = new Map<string, number>();
  let converged = 0;
  const falsePositives = new Set<string>();
  const suspectedLive = new Set<string>();
  let watch: ((observer: string, id: string, status: string, version: string) => void) | undefined;

  sim.observe((observer, { member, previous }) => {
    const wasLive = previous === 'alive' || previous === 'suspect';
    const isLive = member.status === 'alive' || member.status === 'suspect';
    if (wasLive !== isLive && member.id !== observer) {
      const before = knownLive.get(observer) ?? 1;
      const after = before + (isLive ? 1 : -1);
      knownLive.set(observer, after);
      if (before === n) converged -= 1;
      if (after === n) converged += 1;
    }
    if (member.status === 'dead' && sim.isUp(member.id)) falsePositives.add(member.id);
    if (member.status === 'suspect' && sim.isUp(member.id)) suspectedLive.add(member.id);
    watch?.(observer, member.id, member.status, member.meta.version);
  });

  // Phase 1: a join storm, everyone through one seed within a second.
  sim.start(ids[0] as string);
  for (const id of ids.slice(1)) {
    sim.loop.at(random.int(JOIN_SPREAD_MS), () => sim.start(id, [ids[0] as string]));
  }
  const joined = sim.run(120_000, () => converged === n);
  const joinConvergedMs = joined ? sim.now : null;

  // Phase 2: steady state (once the join storm's gossip has drained), optionally with one node
  // stalled; traffic is counted over this window.
  sim.run(sim.now + 300_000, () =>
    sim.liveNodes().every((node) => node.swim.pendingBroadcasts === 0),
  );
  const sentBefore = sim.network.sent;
  const steadyStart = sim.now;
  if (stallMs > 0) {
    const stalled = ids[1 + random.int(n - 1)] as string;
    sim.loop.at(steadyStart + 1000, () => sim.stall(stalled, stallMs));
  }
  sim.run(steadyStart + steadyMs);
  const msgsPerNodePerSec = (sim.network.sent - sentBefore) / n / (steadyMs / 1000);

  // Phase 3: one node changes its metadata.
  const changed = ids[1 + random.int(n - 1)] as string;
  const informed = new Set<string>();
  watch = (observer, id, _status, version) => {
    if (id === changed && version === '2') informed.add(observer);
  };
  const changeAt = sim.now;
  sim.updateMeta(changed, simMeta(changed, '2'));
  const spread = sim.run(changeAt + 60_000, () => informed.size >= quorum(n - 1));
  const disseminationP999Ms = spread ? sim.now - changeAt : null;

  // Phase 4: one node crashes.
  let victim = changed;
  while (victim === changed) victim = ids[1 + random.int(n - 1)] as string;
  const knowsDead = new Set<string>();
  let firstAt: number | null = null;
  watch = (observer, id, status) => {
    if (id !== victim || status !== 'dead') return;
    knowsDead.add(observer);
    firstAt ??= sim.now;
  };
  const crashAt = sim.now;
  sim.crash(victim);
  const detected = sim.run(crashAt + 180_000, () => knowsDead.size >= quorum(n - 1));
  const first: number | null = firstAt;

  return {
    nodes: n,
    seed,
    loss,
    stallMs,
    joinConvergedMs,
    disseminationP999Ms,
    failureDetectedFirstMs: first === null ? null : first - crashAt,
    failureDetectedAllMs: detected ? sim.now - crashAt : null,
    falsePositives: falsePositives.size,
    suspectedLiveNodes: suspectedLive.size,
    msgsPerNodePerSec: Number(msgsPerNodePerSec.toFixed(2)),
    simulatedMs: Math.round(sim.now),
  };
}

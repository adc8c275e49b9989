/**
 * The autoscaler's decision on recorded metric series, one behaviour per test: each series is
 * what the replicas used at each 15 s step; replicas added at a step are ready at the next.
 */
import test from 'ava';
import { decide, type Observation } from '../../../agent/autoscaler/decide.js';
import {
  type AutoscaleHistory,
  type AutoscalePolicy,
  DEFAULT_BEHAVIOUR,
  NO_HISTORY,
} from '../../../mesh/api/autoscale.js';

const STEP_MS = 15_000;

const policy = (changes: Partial<AutoscalePolicy> = {}): AutoscalePolicy => ({
  min: 2,
  max: 10,
  targets: { cpu: 60 },
  ...DEFAULT_BEHAVIOUR,
  ...changes,
});

/**
 * Replays a series: at step i every ready replica uses cpu[i] percent (the same load spread over
 * the replicas the service had at the previous step: total work is what the series records, in
 * replica-percent when `total` is set). Returns the replica count after each step, and the reasons.
 */
function replay(
  autoscale: AutoscalePolicy,
  series: number[],
  options: { start?: number; total?: boolean } = {},
): { counts: number[]; reasons: string[] } {
  let replicas = options.start ?? autoscale.min;
  let history: AutoscaleHistory = NO_HISTORY;
  const counts: number[] = [];
  const reasons: string[] = [];
  for (const [i, load] of series.entries()) {
    const perReplica = options.total ? load / replicas : load;
    const observation: Observation = {
      now: i * STEP_MS,
      replicas,
      ready: replicas,
      usage: Array.from({ length: replicas }, () => ({ cpu: perReplica })),
    };
    const decision = decide(autoscale, observation, history);
    replicas = decision.replicas;
    history = decision.history;
    counts.push(replicas);
    reasons.push(decision.reason);
  }
  return { counts, reasons };
}

test('a steady load on target changes nothing', (t) => {
  const { counts, reasons } = replay(policy(), [60, 61, 59, 60, 60], { start: 3 });
  t.deepEqual(counts, [3, 3, 3, 3, 3]);
  t.regex(reasons[0] ?? '', /^held at 3: cpu 60% within tolerance of target 60%$/);
});

test('a spike scales up to what the load needs, and says why', (t) => {
  // 3 replicas at 84 %: 252 replica-percent of work, 5 replicas at 60 % (ceil of 4.2).
  const { counts, reasons } = replay(policy(), [252, 252, 252], { start: 3, total: true });
  t.deepEqual(counts, [5, 5, 5]);
  t.is(reasons[0], 'scaled 3→5: cpu 84% > target 60%');
});

test('within the tolerance nothing moves; just past it, it does', (t) => {
  t.deepEqual(replay(policy(), [65, 54], { start: 4 }).counts, [4, 4]);
  t.deepEqual(replay(policy(), [67], { start: 4 }).counts, [5]);
});

test('a noisy series around the target does not flap', (t) => {
  // Work of 4 replicas at 60 %, ±25 % noise: up when it peaks, never down within the window.
  const noise = [1, 1.25, 0.8, 1.2, 0.75, 1.1, 0.9, 1.25, 0.8, 1, 1.2, 0.75, 1.05, 0.95, 1.2];
  const { counts } = replay(
    policy(),
    noise.map((n) => 240 * n),
    { start: 4, total: true },
  );
  const changes = counts.filter((c, i) => c !== (i === 0 ? 4 : counts[i - 1]));
  t.true(changes.length <= 1, `one step up at most, got ${counts.join(' ')}`);
  t.true(
    counts.every((c) => c >= 4),
    `never below the load's 4, got ${counts.join(' ')}`,
  );
});

test('a replica without metrics yet is neither hot nor cold', (t) => {
  const hot = { cpu: 90 };
  const observation = (usage: Observation['usage']): Observation => ({
    now: 0,
    replicas: 4,
    ready: 4,
    usage,
  });
  // Two at 90 %, two without metrics (taken on target): (180 + 120) / 4 = 75 % → ceil(5) = 5.
  t.is(decide(policy(), observation([hot, hot]), NO_HISTORY).replicas, 5);
  // Nobody has metrics: nothing to go on.
  const none = decide(policy(), observation([]), NO_HISTORY);
  t.is(none.replicas, 4);
  t.is(none.reason, 'held at 4: no metrics yet');
});

test('min and max bound every decision, and a count outside them goes to the bound at once', (t) => {
  t.deepEqual(replay(policy(), [600], { start: 8, total: true }).counts, [10]);
  t.deepEqual(
    replay(policy({ scaleDown: { ...DEFAULT_BEHAVIOUR.scaleDown, stabilizationMs: 0 } }), [1], {
      start: 3,
    }).counts,
    [2],
  );
  const below = replay(policy({ min: 5 }), [60], { start: 2 });
  t.deepEqual(below.counts, [5]);
  t.is(below.reasons[0], 'scaled 2→5: outside min 5, max 10');
});

test('scale-up adds at most max_step replicas per period', (t) => {
  const limited = policy({ max: 20, scaleUp: { maxStep: 2, periodMs: 30_000 } });
  // Work for 12 replicas from the start: +2 per 30 s, so one step every other 15 s step.
  const { counts, reasons } = replay(limited, Array(8).fill(720), { start: 2, total: true });
  t.deepEqual(counts, [4, 4, 6, 6, 8, 8, 10, 10]);
  t.is(reasons[0], 'scaled 2→4 (limited to 2 per 30s): cpu 360% > target 60%');
  t.regex(reasons[1] ?? '', /^held at 4: up to \d+ waits for the scale-up period/);
});

test('scale-up by default adds the larger of 4 replicas and the current count', (t) => {
  const wide = policy({ max: 50 });
  t.deepEqual(replay(wide, [3000], { start: 2, total: true }).counts, [6]);
  t.deepEqual(replay(wide, [3000], { start: 10, total: true }).counts, [20]);
});

test('scale-down waits out the stabilization window, then goes to its highest recommendation', (t) => {
  const window = policy({
    scaleDown: { periodMs: STEP_MS, stabilizationMs: 4 * STEP_MS },
  });
  // Work of 6 replicas, then of 2 from step 1 on: held while the window still has a 6.
  const { counts, reasons } = replay(window, [360, 120, 120, 120, 120, 120], {
    start: 6,
    total: true,
  });
  t.deepEqual(counts, [6, 6, 6, 6, 2, 2]);
  t.regex(reasons[1] ?? '', /^held at 6: down to 2 waits for the stabilization window/);
  t.regex(reasons[4] ?? '', /^scaled 6→2: cpu 20% < target 60%$/);
});

test('scale-down removes at most max_step replicas per period', (t) => {
  const limited = policy({
    scaleDown: { maxStep: 1, periodMs: 2 * STEP_MS, stabilizationMs: 0 },
  });
  const { counts } = replay(limited, Array(6).fill(120), { start: 6, total: true });
  t.deepEqual(counts, [5, 5, 4, 4, 3, 3]);
});

test('nothing scales down while replicas are still starting', (t) => {
  const starting: Observation = {
    now: 0,
    replicas: 6,
    ready: 3,
    usage: Array.from({ length: 3 }, () => ({ cpu: 70 })),
  };
  const decision = decide(
    policy({ scaleDown: { ...DEFAULT_BEHAVIOUR.scaleDown, stabilizationMs: 0 } }),
    starting,
    NO_HISTORY,
  );
  t.is(decision.replicas, 6);
  t.regex(decision.reason, /waits for every replica to be ready/);
});

test('requests per second are shared over the ready replicas; the largest metric wins', (t) => {
  const both = policy({
    targets: { cpu: 60, rps: 100 },
    scaleUp: { maxStep: 10, periodMs: STEP_MS },
  });
  const observation: Observation = {
    now: 0,
    replicas: 3,
    ready: 3,
    usage: Array.from({ length: 3 }, () => ({ cpu: 60 })),
    rps: 750,
  };
  const decision = decide(both, observation, NO_HISTORY);
  t.is(decision.replicas, 8);
  t.is(
    decision.reason,
    'scaled 3→8: cpu 60% within tolerance of target 60%, rps 250.0/replica > target 100',
  );
});

test('the history keeps of the window only what can still be its highest', (t) => {
  const window = policy({ scaleDown: { periodMs: STEP_MS, stabilizationMs: 4 * STEP_MS } });
  const at = (i: number, cpu: number): Observation => ({
    now: i * STEP_MS,
    replicas: 6,
    ready: 6,
    usage: Array.from({ length: 6 }, () => ({ cpu })),
  });
  let history = NO_HISTORY;
  for (const [i, cpu] of [30, 50, 40, 20].entries())
    history = decide(window, at(i, cpu), history).history;
  // 3 (30%), then 5 (50%) replaces it, then 4 and 2 follow it, each lower than the one before.
  t.deepEqual(history.recommendations, [
    { at: 1 * STEP_MS, replicas: 5 },
    { at: 2 * STEP_MS, replicas: 4 },
    { at: 3 * STEP_MS, replicas: 2 },
  ]);
});

test('the history keeps the window, and a new leader that takes it over holds as the old would', (t) => {
  const window = policy({ scaleDown: { periodMs: STEP_MS, stabilizationMs: 2 * STEP_MS } });
  const at = (i: number, cpu: number, replicas = 6): Observation => ({
    now: i * STEP_MS,
    replicas,
    ready: replicas,
    usage: Array.from({ length: replicas }, () => ({ cpu })),
  });
  let history = NO_HISTORY;
  for (let i = 0; i < 10; i++) history = decide(window, at(i, 60), history).history;
  // Of equal recommendations only the latest is kept (it leaves the window last); no change made.
  t.deepEqual(
    history.recommendations.map((r) => r.at / STEP_MS),
    [9],
  );
  t.deepEqual(history.changes, []);
  // The load falls as the leader changes: with the history the window holds; without, it would not.
  t.is(decide(window, at(10, 20), history).replicas, 6);
  t.is(decide(window, at(10, 20), NO_HISTORY).replicas, 2);
});

import type { Membership, NodeId } from './types.js';

export interface Health {
  /** From SWIM: alive, suspect, dead or left; absent when membership has never seen the node. */
  status: 'alive' | 'suspect' | 'dead' | 'left' | undefined;
  /** When the status last changed (ms). */
  since: number;
  /** Its log holds everything the leader committed (the leader's replication progress). */
  caughtUp: boolean;
  /** It joined with a worker token: it is never seated, and does not count toward the target. */
  workerOnly: boolean;
  /**
   * It says it holds the voters' key: only then is it seated, so that every voter can hand the
   * key on and it survives the loss of any one voter.
   */
  holdsKey: boolean;
}

export interface VoterPolicy {
  maxVoters: number;
  /**
   * A voter dead this long is gone for good and is replaced. Minutes, not seconds: a partition
   * is not a departure, and replacing a partitioned voter only shrinks the quorum that is left.
   */
  replaceDeadAfterMs: number;
  /** A learner is seated only once alive this long, and caught up (autopilot's "stable"). */
  stableAfterMs: number;
}

export const DEFAULT_VOTER_POLICY: VoterPolicy = {
  maxVoters: 5,
  replaceDeadAfterMs: 5 * 60_000,
  stableAfterMs: 3000,
};

/**
 * How many more voters may fail with the cluster still able to commit: the live ones past the
 * quorum of all of them (a voter already dead has used up one).
 */
export function faultTolerance(voters: number, live = voters): number {
  return Math.max(0, live - (Math.floor(voters / 2) + 1));
}

/** The voter count the policy aims at with this many healthy nodes: the largest odd one allowed. */
export function targetVoters(healthy: number, policy: VoterPolicy = DEFAULT_VOTER_POLICY): number {
  const cap = Math.min(policy.maxVoters, healthy);
  return cap % 2 === 1 ? cap : Math.max(1, cap - 1);
}

/**
 * The leader's voter placement, one change at a time: every live node is at least a learner (so
 * every node holds the whole state); voters are kept at an odd count (1, 3 or 5) of healthy
 * nodes that may be seated (not joined with a worker token); a voter that left, or has been dead
 * for minutes, gives its seat to a healthy learner; a learner is seated only once it is stable,
 * caught up and holds the voters' key, so that the change never waits on it and the key is never
 * held by fewer nodes than the voters.
 * Returns the next membership, or undefined when nothing should change.
 */
export function nextMembership(
  current: Membership,
  health: ReadonlyMap<NodeId, Health>,
  leader: NodeId,
  now: number,
  policy: VoterPolicy = DEFAULT_VOTER_POLICY,
): Membership | undefined {
  const voters = [...current.voters];
  const learners = [...current.learners];
  const statusOf = (id: NodeId) => health.get(id)?.status;
  const healthy = (id: NodeId) => id === leader || statusOf(id) === 'alive';
  const mayBeSeated = (id: NodeId) => id === leader || health.get(id)?.workerOnly === false;
  const goneForGood = (id: NodeId) => {
    const h = health.get(id);
    return (
      id !== leader &&
      (h?.status === 'left' || (h?.status === 'dead' && now - h.since >= policy.replaceDeadAfterMs))
    );
  };

  // 1. Forget members that are gone for good, learners first (they cost no quorum).
  const goneLearner = learners.find(goneForGood);
  if (goneLearner) return { voters, learners: learners.filter((id) => id !== goneLearner) };
  const goneVoter = voters.find(goneForGood);
  if (goneVoter && voters.length > 1)
    return { voters: voters.filter((id) => id !== goneVoter), learners };

  // 2. Every live node holds the state: newcomers join as learners.
  const members = new Set([...voters, ...learners]);
  const newcomer = [...health.keys()]
    .sort()
    .find((id) => !members.has(id) && statusOf(id) === 'alive');
  if (newcomer) return { voters, learners: [...learners, newcomer] };

  // 3. Seat healthy learners until the voters are the largest odd number the healthy nodes allow.
  const target = targetVoters(
    [...members].filter((id) => healthy(id) && mayBeSeated(id)).length,
    policy,
  );
  const ready = (id: NodeId) => {
    const h = health.get(id);
    return (
      healthy(id) &&
      mayBeSeated(id) &&
      h?.holdsKey === true &&
      h.caughtUp &&
      now - h.since >= policy.stableAfterMs
    );
  };
  if (voters.length < target) {
    const candidates = learners.filter(ready).sort();
    const candidate = candidates[0];
    // From an odd count, start only when two are ready: halfway, at an even count, the quorum
    // would need every voter, so the cluster must not wait there on a learner that is behind.
    if (candidate && (voters.length % 2 === 0 || candidates.length >= 2))
      return {
        voters: [...voters, candidate],
        learners: learners.filter((id) => id !== candidate),
      };
  }
  // 4. An even number of voters with no healthy learner to seat: step one voter down to learner,
  // preferring an unhealthy one, so the quorum does not need every remaining voter. (It never
  // lowers the failures tolerated: 2k and 2k-1 voters both tolerate k-1.) Not while a learner
  // is about to be seated instead.
  const seatable = learners.some((id) => healthy(id) && mayBeSeated(id));
  if (voters.length % 2 === 0 && voters.length > 1 && !seatable) {
    const demoted = voters
      .filter((id) => id !== leader)
      .sort((a, b) => Number(healthy(a)) - Number(healthy(b)))[0];
    if (demoted)
      return { voters: voters.filter((id) => id !== demoted), learners: [...learners, demoted] };
  }
  return undefined;
}

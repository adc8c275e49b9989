import type { Membership, NodeId } from './types.js';

export interface Health {
  /** From SWIM: alive, suspect, dead or left; absent when membership has never seen the node. */
  status: 'alive' | 'suspect' | 'dead' | 'left' | undefined;
  /** When the status last changed (ms). */
  since: number;
}

export interface VoterPolicy {
  maxVoters: number;
  /** A voter dead this long is gone for good and is replaced. */
  replaceDeadAfterMs: number;
}

export const DEFAULT_VOTER_POLICY: VoterPolicy = { maxVoters: 5, replaceDeadAfterMs: 30_000 };

/**
 * The leader's voter placement, one change at a time: every live node is at least a learner (so
 * every node holds the whole state); voters are kept at an odd count (1, 3 or 5) of healthy
 * nodes; a voter that left, or has been dead for good, gives its seat to a healthy learner.
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
  const healthyCount = [...members].filter(healthy).length;
  const cap = Math.min(policy.maxVoters, healthyCount);
  const target = cap % 2 === 1 ? cap : cap - 1;
  if (voters.length < target) {
    const candidate = learners.filter(healthy).sort()[0];
    if (candidate)
      return {
        voters: [...voters, candidate],
        learners: learners.filter((id) => id !== candidate),
      };
  }
  // 4. An even number of voters with no healthy learner to seat: step one voter down to learner,
  // preferring an unhealthy one, so the quorum does not need every remaining voter.
  if (voters.length % 2 === 0 && voters.length > 1) {
    const demoted = voters
      .filter((id) => id !== leader)
      .sort((a, b) => Number(healthy(a)) - Number(healthy(b)))[0];
    if (demoted)
      return { voters: voters.filter((id) => id !== demoted), learners: [...learners, demoted] };
  }
  return undefined;
}

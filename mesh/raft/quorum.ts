/**
 * Majority arithmetic over a set of voters, pure (as etcd-raft's quorum/majority.go): what a
 * leader may commit, whether an election is won, and whether enough voters are with the leader.
 * Only the voters named count; anyone else's ack or vote is ignored.
 */

export type VoteResult = 'won' | 'lost' | 'pending';

/** How many of `voters` make a majority. */
export function majority(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The highest index that a majority of the voters hold: what a leader may commit (of its term). */
export function committedIndex(
  voters: readonly string[],
  acked: (voter: string) => number,
): number {
  const indexes = voters.map(acked).sort((a, b) => b - a);
  return indexes[majority(voters.length) - 1] ?? 0;
}

/**
 * An election's result from the votes heard so far: won with a majority of grants, lost once a
 * majority can no longer grant (with those not heard yet), pending otherwise.
 */
export function voteResult(
  voters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteResult {
  const needed = majority(voters.length);
  const granted = voters.filter((v) => votes.get(v) === true).length;
  const unheard = voters.filter((v) => !votes.has(v)).length;
  if (granted >= needed) return 'won';
  return granted + unheard < needed ? 'lost' : 'pending';
}

/** Whether a majority of the voters are among those `with` says are (check-quorum, confirmed reads). */
export function hasMajority(
  voters: readonly string[],
  isWith: (voter: string) => boolean,
): boolean {
  return voters.filter(isWith).length >= majority(voters.length);
}

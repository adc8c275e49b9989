/** The leader's view of one follower's replication. */
export interface Progress {
  /** Highest index known to be in the follower's log. */
  match: number;
  /** Next index to send. */
  next: number;
  /** After a rejection: one append at a time until the follower's log is found again. */
  probing: boolean;
  /** A probe (or snapshot) is in flight; the next heartbeat unpauses. */
  paused: boolean;
  /** Heard from since the last check-quorum. */
  recentActive: boolean;
  /** Highest heartbeat round the follower has answered: confirms leadership for reads. */
  ackedSeq: number;
  /** The commit index last sent to it: a newer one is sent at once, not with the next heartbeat. */
  commitSent: number;
}

export function newProgress(lastIndex: number): Progress {
  return {
    match: 0,
    next: lastIndex + 1,
    probing: true,
    paused: false,
    recentActive: false,
    ackedSeq: 0,
    commitSent: 0,
  };
}

import type { Membership, Message } from './types.js';

/**
 * Why this node must not act on a Raft message, given who sent it, or undefined when it may.
 * Roles are read from the receiver's own configuration (the latest in its log): only a voter asks
 * for votes, answers them, leads (appends, snapshots, heartbeats, which carry entries, commit
 * indexes and membership changes) or hands leadership on; a learner only answers appends, and
 * never in a term above the receiver's (it never campaigns, so it has no term of its own to
 * bring). A refused message is not stepped at all: term, role, vote and log stay as they were.
 * The certificate names the sender (parseRaftMessage checks `from` against it).
 */
export function roleRefusal(
  message: Message,
  membership: Membership,
  term: number,
): string | undefined {
  const { from, type } = message;
  if (membership.voters.includes(from)) return undefined;
  const learner = membership.learners.includes(from);
  const who = learner ? `${from} is a learner` : `${from} is not a member of this configuration`;
  if (type !== 'append-resp') return `${who}: only voters send ${type} messages`;
  if (!learner) return `${who}: only members answer appends`;
  if (message.term > term)
    return `${who}: its answer in term ${message.term} (ours is ${term}) cannot raise the term`;
  return undefined;
}

import type { Message, NodeId } from './types.js';

export class RaftMessageError extends Error {
  override name = 'RaftMessageError';
}

const TYPES = new Set([
  'prevote',
  'vote',
  'prevote-resp',
  'vote-resp',
  'append',
  'append-resp',
  'snapshot',
  'timeout-now',
]);
const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Checks a Raft message from the network before the state machine sees it. Its sender must be the
 * node the transport authenticated; a member cannot speak for another.
 */
export function parseRaftMessage(body: unknown, authenticated: NodeId, self: NodeId): Message {
  const m = body as Record<string, unknown> | null;
  if (typeof m !== 'object' || m === null || !TYPES.has(m.type as string))
    throw new RaftMessageError('not a Raft message');
  if (m.from !== authenticated)
    throw new RaftMessageError(
      `claims to be from ${String(m.from)}, but the peer is ${authenticated}`,
    );
  if (m.to !== self) throw new RaftMessageError(`addressed to ${String(m.to)}, not to us`);
  if (!count(m.term)) throw new RaftMessageError('term must be a non-negative integer');
  const numbers: Record<string, string[]> = {
    prevote: ['lastIndex', 'lastTerm'],
    vote: ['lastIndex', 'lastTerm'],
    append: ['prevIndex', 'prevTerm', 'commit', 'seq'],
    'append-resp': ['index', 'hintIndex', 'hintTerm', 'seq'],
    snapshot: ['seq'],
  };
  for (const field of numbers[m.type as string] ?? []) {
    if (!count(m[field])) throw new RaftMessageError(`${String(m.type)} without a valid ${field}`);
  }
  if (m.type === 'append' && !Array.isArray(m.entries))
    throw new RaftMessageError('append without entries');
  if (m.type === 'snapshot' && (typeof m.snapshot !== 'object' || m.snapshot === null)) {
    throw new RaftMessageError('snapshot message without a snapshot');
  }
  return m as unknown as Message;
}

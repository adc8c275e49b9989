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
const KINDS = new Set(['command', 'config', 'noop']);

function checkMembership(value: unknown, what: string): void {
  const m = value as { voters?: unknown; learners?: unknown } | null;
  const ids = (list: unknown) => Array.isArray(list) && list.every((id) => typeof id === 'string');
  if (typeof m !== 'object' || m === null || !ids(m.voters) || !ids(m.learners)) {
    throw new RaftMessageError(`${what} is not a membership (voters and learners)`);
  }
}

/** Entries must follow prevIndex without a gap, each of a known kind; a config entry, a membership. */
function checkEntries(entries: unknown[], prevIndex: number): void {
  entries.forEach((value, i) => {
    const e = value as { index?: unknown; term?: unknown; kind?: unknown; data?: unknown } | null;
    if (typeof e !== 'object' || e === null || e.index !== prevIndex + 1 + i || !count(e.term)) {
      throw new RaftMessageError(`entry ${i} does not follow index ${prevIndex + i}`);
    }
    if (!KINDS.has(e.kind as string))
      throw new RaftMessageError(`entry ${e.index} is of unknown kind`);
    if (e.kind === 'config') checkMembership(e.data, `config entry ${e.index}`);
  });
}

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
  if (m.type === 'append') {
    if (!Array.isArray(m.entries)) throw new RaftMessageError('append without entries');
    checkEntries(m.entries, m.prevIndex as number);
  }
  if (m.type === 'snapshot') {
    const snap = m.snapshot as { index?: unknown; term?: unknown; membership?: unknown } | null;
    if (typeof snap !== 'object' || snap === null || !count(snap.index) || !count(snap.term)) {
      throw new RaftMessageError('snapshot message without a valid snapshot');
    }
    checkMembership(snap.membership, 'snapshot membership');
  }
  return m as unknown as Message;
}

import type { Entry, Membership, Snapshot } from './types.js';

/**
 * The replicated log as this node holds it: a snapshot base, the entries after it, the commit and
 * apply marks, and where the memberships recorded in it take effect.
 */
export class RaftLog {
  base: { index: number; term: number };
  entries: Entry[] = [];
  committed: number;
  applied: number;
  /** Membership changes in the log, oldest first; the first one stands at or before the base. */
  memberships: Array<{ index: number; membership: Membership }>;
  /** The lowest index changed since the last Ready: from here on the log must be persisted again. */
  unstableFrom = Number.POSITIVE_INFINITY;

  constructor(
    snapshot: Pick<Snapshot, 'index' | 'term' | 'membership'>,
    entries: Entry[],
    commit: number,
  ) {
    this.base = { index: snapshot.index, term: snapshot.term };
    this.memberships = [{ index: snapshot.index, membership: snapshot.membership }];
    this.committed = Math.max(commit, snapshot.index);
    this.applied = snapshot.index;
    for (const entry of entries) this.push(entry);
    this.unstableFrom = this.lastIndex + 1;
  }

  get lastIndex(): number {
    return this.base.index + this.entries.length;
  }

  get lastTerm(): number {
    return this.term(this.lastIndex) ?? 0;
  }

  get membership(): Membership {
    return (this.memberships.at(-1) as { membership: Membership }).membership;
  }

  /** The term of the entry at index, or undefined when it is compacted away or not there yet. */
  term(index: number): number | undefined {
    if (index === this.base.index) return this.base.term;
    return this.entries[index - this.base.index - 1]?.term;
  }

  /** Entries in [from, to], which must not reach below the base. */
  slice(from: number, to: number): Entry[] {
    return this.entries.slice(from - this.base.index - 1, to - this.base.index);
  }

  /** Raft's election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  /** The leader's own append. */
  append(entry: Omit<Entry, 'index'>): Entry {
    const full = { ...entry, index: this.lastIndex + 1 };
    this.push(full);
    return full;
  }

  /**
   * A follower's append: when the log matches at prevIndex, entries that conflict are replaced
   * and new ones added; returns the index of the last entry this message vouches for.
   */
  tryAppend(prevIndex: number, prevTerm: number, entries: Entry[]): number | undefined {
    if (this.term(prevIndex) !== prevTerm) return undefined;
    for (const entry of entries) {
      if (entry.index <= this.base.index) continue;
      const existing = this.term(entry.index);
      if (existing === entry.term) continue;
      if (existing !== undefined) this.truncateFrom(entry.index);
      this.push(entry);
    }
    return prevIndex + entries.length;
  }

  /**
   * Where a leader should retry after a rejection at prevIndex: the last index at or below it
   * whose term is no higher than prevTerm, so one round trip skips a whole conflicting term.
   */
  conflictHint(prevIndex: number, prevTerm: number): { index: number; term: number } {
    let index = Math.min(prevIndex, this.lastIndex);
    while (index > this.base.index && (this.term(index) ?? 0) > prevTerm) index--;
    return { index, term: this.term(index) ?? 0 };
  }

  /** Replaces everything with a snapshot (a follower far behind, or a restart). */
  restore(snapshot: Snapshot): void {
    this.base = { index: snapshot.index, term: snapshot.term };
    this.entries = [];
    this.memberships = [{ index: snapshot.index, membership: snapshot.membership }];
    this.committed = Math.max(this.committed, snapshot.index);
    this.applied = snapshot.index;
    this.unstableFrom = snapshot.index + 1;
  }

  /** Drops entries up to index, which a snapshot now covers. */
  compact(index: number): void {
    if (index <= this.base.index) return;
    const term = this.term(index) as number;
    this.entries = this.entries.slice(index - this.base.index);
    this.base = { index, term };
    const kept = this.memberships.filter((m) => m.index > index);
    const covering = this.membershipAt(index);
    this.memberships = [{ index, membership: covering }, ...kept];
  }

  membershipAt(index: number): Membership {
    let found = (this.memberships[0] as { membership: Membership }).membership;
    for (const m of this.memberships) if (m.index <= index) found = m.membership;
    return found;
  }

  private push(entry: Entry): void {
    this.entries.push(entry);
    if (entry.kind === 'config')
      this.memberships.push({ index: entry.index, membership: entry.data as Membership });
    this.unstableFrom = Math.min(this.unstableFrom, entry.index);
  }

  private truncateFrom(index: number): void {
    this.entries = this.entries.slice(0, index - this.base.index - 1);
    this.memberships = this.memberships.filter((m, i) => i === 0 || m.index < index);
    this.unstableFrom = Math.min(this.unstableFrom, index);
  }
}

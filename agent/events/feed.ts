import type { Logger } from 'pino';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import { type ClusterEvent, EVENT_TYPES, type EventType } from '../control/api.js';
import { InvalidError } from '../errors.js';
import { eventsOfChange, type Happening } from './events.js';

/** Events each node keeps, the oldest dropped first: about a day of a busy small cluster. */
export const EVENTS_KEPT = 5000;

/** What `mesh events` asks for: after a place in the feed (-f), from a time (--since), of types. */
export interface EventQuery {
  after?: number;
  since?: number;
  types?: EventType[];
}

/**
 * This node's events feed, in memory: what the replicated state says happened (the same on every
 * node, since each applies the same writes in the same order) and what this node saw of Raft
 * (leaders, voters, writes it refused as leader). Bounded to the last EVENTS_KEPT; it starts empty
 * when the agent starts.
 */
export class EventFeed {
  private readonly events: ClusterEvent[] = [];
  private seq = 0;
  private readonly stops: Array<() => void> = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: { state: ClusterState; raft: RaftNode; log: Logger }) {}

  /** The number of the last event added (0: none yet). */
  get last(): number {
    return this.seq;
  }

  /** Calls the listener after each event added; returns the unsubscribe. */
  onEvent(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    const { state, raft } = this.options;
    // What the log held when the agent started is replayed into the replica: old news, not told.
    const replayedUpTo = raft.raft.log.committed;
    this.stops.push(
      state.watch((change) => {
        if (state.appliedIndex > replayedUpTo) this.addAll(eventsOfChange(change));
      }),
    );
    const leader = (id: string | null) =>
      this.add({
        type: 'raft',
        action: 'leader',
        subject: id ?? 'none',
        reason: `term ${raft.raft.term}`,
      });
    const voters = (ids: string[]) =>
      this.add({ type: 'raft', action: 'voters', subject: ids.join(',') });
    const refused = ({ sender, reason }: { sender: string; reason: string }) =>
      this.add({ type: 'write', action: 'refused', subject: sender, reason });
    raft.on('leader', leader);
    raft.on('voters', voters);
    raft.on('refused', refused);
    this.stops.push(() => {
      raft.off('leader', leader);
      raft.off('voters', voters);
      raft.off('refused', refused);
    });
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  read(query: EventQuery): { events: ClusterEvent[]; last: number } {
    const events = this.events.filter(
      (e) =>
        e.seq > (query.after ?? 0) &&
        (query.since === undefined || Date.parse(e.time) >= query.since) &&
        (!query.types || query.types.includes(e.type)),
    );
    return { events, last: this.seq };
  }

  private addAll(happenings: Happening[]): void {
    for (const happening of happenings) this.add(happening);
  }

  private add(happening: Happening): void {
    this.events.push({ seq: ++this.seq, time: new Date().toISOString(), ...happening });
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    for (const listener of this.listeners) listener();
  }
}

/** The query of GET /v1/events, checked: numbers where numbers go, known types only. */
export function eventQuery(raw: { after?: unknown; since?: unknown; types?: unknown }): EventQuery {
  const number = (value: unknown, name: string) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new InvalidError(`${name} must be a number, got "${String(value)}"`);
    return n;
  };
  if (raw.types !== undefined && typeof raw.types !== 'string')
    throw new InvalidError('types must be a list of event types, comma-separated');
  const types = raw.types?.split(',').filter(Boolean);
  const unknown = types?.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (unknown)
    throw new InvalidError(`no event type "${unknown}"; the types are ${EVENT_TYPES.join(', ')}`);
  return {
    after: number(raw.after, 'after'),
    since: number(raw.since, 'since'),
    ...(types && { types: types as EventType[] }),
  };
}

export type NodeId = string;

/** Who takes part: voters elect and form quorums; learners only receive the log. */
export interface Membership {
  voters: NodeId[];
  learners: NodeId[];
}

export type EntryKind = 'command' | 'config' | 'noop';

export interface Entry {
  index: number;
  term: number;
  kind: EntryKind;
  /** The command for the state machine ('command'), or the new membership ('config'). */
  data: unknown;
}

/** What must be on stable storage before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface Snapshot {
  index: number;
  term: number;
  membership: Membership;
  data: unknown;
}

interface Envelope {
  from: NodeId;
  to: NodeId;
  term: number;
}

export type Message = Envelope &
  (
    | { type: 'prevote' | 'vote'; lastIndex: number; lastTerm: number; transfer: boolean }
    | { type: 'prevote-resp' | 'vote-resp'; reject: boolean }
    | {
        type: 'append';
        prevIndex: number;
        prevTerm: number;
        entries: Entry[];
        commit: number;
        seq: number;
      }
    | {
        type: 'append-resp';
        reject: boolean;
        /** Accepted: the follower's match. Rejected: the prevIndex that did not match. */
        index: number;
        /** On rejection, where the leader should look next: see RaftLog.conflictHint. */
        hintIndex: number;
        hintTerm: number;
        seq: number;
      }
    | { type: 'snapshot'; snapshot: Snapshot; seq: number }
    | { type: 'timeout-now' }
  );

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  requestId: string;
  index: number;
}

/**
 * Everything the caller must do after a step, in this order: persist `hardState`, `snapshot` and
 * `entries` (replacing the log from `entries[0].index` on), send `messages`, apply `committed`,
 * and answer `reads` once applied.
 */
export interface Ready {
  hardState?: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
  messages: Message[];
  committed: Entry[];
  reads: ReadState[];
}

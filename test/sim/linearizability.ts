/** One client operation on a register, as the client saw it. */
export interface Operation {
  client: number;
  kind: 'write' | 'read';
  key: string;
  /** Written value, or the value the read returned. */
  value: string | null;
  invokedAt: number;
  /** Infinity when the client never learned the outcome (it may or may not have happened). */
  returnedAt: number;
}

export type Verdict =
  | { ok: true }
  | { ok: false; key: string; ops: Operation[]; undecided: boolean };

/** Search states per key before giving up; correct histories need a tiny fraction of this. */
const BUDGET = 2_000_000;

/**
 * Checks a history of reads and writes on independent registers for linearizability (per key, as
 * linearizability composes). A search in the manner of Wing & Gong with memoization: repeatedly
 * pick an operation that could take effect next. An operation whose outcome is unknown may take
 * effect at any point after its invocation, or never; one whose value nobody read can always go
 * last, so it is left out.
 */
export function checkLinearizable(history: Operation[]): Verdict {
  const keys = new Set(history.map((op) => op.key));
  for (const key of keys) {
    const all = history.filter((op) => op.key === key);
    const read = new Set(all.filter((op) => op.kind === 'read').map((op) => op.value));
    const ops = all
      .filter((op) => op.returnedAt !== Number.POSITIVE_INFINITY || read.has(op.value))
      .sort((a, b) => a.invokedAt - b.invokedAt);
    const result = linearizable(ops);
    if (result !== true) return { ok: false, key, ops, undecided: result === 'undecided' };
  }
  return { ok: true };
}

function linearizable(ops: Operation[]): true | false | 'undecided' {
  const done = new Array<boolean>(ops.length).fill(false);
  const seen = new Set<string>();
  const mustFinish = ops.filter((op) => op.returnedAt !== Number.POSITIVE_INFINITY).length;
  let budget = BUDGET;

  const search = (value: string | null, finished: number): boolean => {
    if (finished === mustFinish) return true;
    if (--budget < 0) return false;
    const memo = `${value}|${done.map((d) => (d ? 1 : 0)).join('')}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    // Nothing can take effect after an operation that has already returned and not yet taken effect.
    let horizon = Number.POSITIVE_INFINITY;
    for (let i = 0; i < ops.length; i++)
      if (!done[i]) horizon = Math.min(horizon, (ops[i] as Operation).returnedAt);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Operation;
      if (done[i] || op.invokedAt > horizon) continue;
      if (op.kind === 'read' && op.value !== value) continue;
      done[i] = true;
      const next = op.kind === 'write' ? op.value : value;
      const counted = op.returnedAt === Number.POSITIVE_INFINITY ? 0 : 1;
      if (search(next, finished + counted)) return true;
      done[i] = false;
    }
    return false;
  };
  if (search(null, 0)) return true;
  return budget < 0 ? 'undecided' : false;
}

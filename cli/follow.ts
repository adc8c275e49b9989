import { pollUntil } from '../mesh/poll.js';
import { AgentUnavailableError } from './control-client.js';

/** What one look at a long operation found. */
export interface Look<R> {
  /** Progress, a line per thing followed: each is printed when it changed since last printed. */
  lines: string[];
  /** The outcome, once the operation is over. */
  outcome?: R;
  /** What to say if the time runs out now. */
  late: string;
}

/**
 * Follows a long operation on the agent — a rollout, a removal, a CA rotation — looking every
 * `intervalMs` and printing progress as it changes, until the look finds an outcome (returned)
 * or the time is up (`late` printed, undefined returned). While the agent cannot answer (an
 * election, a moment behind) it looks again, saying once why it waits.
 */
export async function follow<R>(
  look: () => Promise<Look<R>>,
  options: { timeoutMs: number; intervalMs: number; quiet?: boolean },
): Promise<R | undefined> {
  const shown: string[] = [];
  let last: Look<R> | undefined;
  let unavailable: AgentUnavailableError | undefined;
  const done = await pollUntil(async () => {
    try {
      last = await look();
    } catch (error) {
      if (!(error instanceof AgentUnavailableError)) throw error;
      if (!unavailable) process.stderr.write(`mesh: waiting: ${error.message}\n`);
      unavailable = error;
      return undefined;
    }
    unavailable = undefined;
    for (const [i, line] of last.lines.entries()) {
      if (!options.quiet && shown[i] !== line) process.stderr.write(`${line}\n`);
      shown[i] = line;
    }
    return last.outcome === undefined ? undefined : { outcome: last.outcome };
  }, options);
  if (done) return done.outcome;
  if (unavailable) throw unavailable;
  process.stderr.write(`${(last as Look<R>).late}\n`);
  return undefined;
}

import { setTimeout as sleep } from 'node:timers/promises';
import { type ClusterEvent, EVENT_TYPES } from '../agent/control/api.js';
import { DATA_DIR, dataDirOf, durationOf, JSON_OUTPUT, parse, UsageError } from './args.js';
import { callAgent } from './control-client.js';

/** How often -f asks the agent for what is new (the local socket answers in a millisecond). */
const FOLLOW_MS = 500;

/**
 * `mesh events`: what happened in the cluster, as the local agent's feed kept it — the events
 * (newest last), or with -f those and then each new one as it comes, as `docker events` does.
 */
export async function events(args: string[]): Promise<number> {
  const { values } = parse('events', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    follow: { type: 'boolean', short: 'f' },
    since: { type: 'string' },
    type: { type: 'string', multiple: true },
  });
  const dataDir = dataDirOf(values);
  const sinceMs = durationOf(values.since, '--since');
  const types = (values.type as string[] | undefined)?.join(',');
  const unknown = types?.split(',').find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
  if (unknown !== undefined)
    throw new UsageError(
      `--type: no event type "${unknown}"; the types are ${EVENT_TYPES.join(', ')}`,
    );
  const filter = {
    ...(sinceMs !== undefined && { since: String(Date.now() - sinceMs) }),
    ...(types && { types }),
  };
  let after = 0;
  for (;;) {
    const page = await callAgent(dataDir, 'GET /v1/events', { ...filter, after: String(after) });
    // The agent restarted (its feed starts again at 1): take it from its start.
    if (page.last < after) after = 0;
    for (const event of page.events) {
      process.stdout.write(`${values.json ? JSON.stringify(event) : describe(event)}\n`);
      after = event.seq;
    }
    if (!values.follow) return 0;
    await sleep(FOLLOW_MS);
  }
}

/** One event, one line: when, what kind, what happened, to what, about what, and why. */
export function describe(event: ClusterEvent): string {
  const about = [
    event.service && `service=${event.service}`,
    event.node && `node=${event.node}`,
  ].filter(Boolean);
  return [
    event.time,
    event.type,
    event.action,
    event.subject,
    about.length > 0 ? `(${about.join(', ')})` : '',
    event.reason ? `— ${event.reason}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

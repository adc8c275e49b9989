import { InvalidError } from '../errors.js';
import type { Changes } from '../events/changes.js';
import { type EventFeed, eventQuery } from '../events/feed.js';
import type { ChangeMark, ControlHandlers } from './api.js';

/** `mesh events` (this node's events feed) and the blocking query pages wait on. */
export function eventRoutes(
  feed: EventFeed,
  changes: Changes,
): Pick<ControlHandlers, 'GET /v1/events' | 'GET /v1/changes'> {
  return {
    'GET /v1/events': (query) => feed.read(eventQuery(query)),
    'GET /v1/changes': (query) => {
      const count = (value: unknown, name: string) => {
        if (value === undefined) return undefined;
        const n = Number(value);
        if (!Number.isSafeInteger(n) || n < 0)
          throw new InvalidError(`${name} must be a whole number, got "${String(value)}"`);
        return n;
      };
      const after: Partial<ChangeMark> = {};
      for (const key of ['index', 'events', 'members'] as const) {
        const n = count(query[key], key);
        if (n !== undefined) after[key] = n;
      }
      return changes.after(after, count(query.wait, 'wait') ?? 0);
    },
  };
}

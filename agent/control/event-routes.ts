import { type EventFeed, eventQuery } from '../events/feed.js';
import type { ControlHandlers } from './api.js';

/** `mesh events`: this node's events feed. */
export function eventRoutes(feed: EventFeed): Pick<ControlHandlers, 'GET /v1/events'> {
  return {
    'GET /v1/events': (query) => feed.read(eventQuery(query)),
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeMark } from '../../agent/control/api.js';
import { callAgent } from '../control-client.js';
import { failureOf } from './api.js';

/** How long each blocking query waits: a comment goes out at least this often, keeping proxies from closing the stream. */
const WAIT_MS = 25_000;
/** After a failed query (the agent restarting), the next one waits this long. */
const RETRY_MS = 1000;

/**
 * One server-sent-events stream per tab: `change` (the node's mark, once its state, events or
 * membership moved: the page re-reads what it shows), `event` (each new event of the feed, as
 * `mesh events -f` prints them), `down` (the agent could not be asked: the page greys what it
 * shows), until the tab goes.
 */
export async function changeStream(
  dataDir: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  let open = true;
  req.on('close', () => {
    open = false;
  });
  const send = (event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  let mark: ChangeMark | undefined;
  let lastEvent: number | undefined;
  while (open) {
    try {
      const asked = mark
        ? {
            index: String(mark.index),
            events: String(mark.events),
            members: String(mark.members),
            wait: String(WAIT_MS),
          }
        : {};
      const now = await callAgent(dataDir, 'GET /v1/changes', asked);
      if (!open) break;
      // The feed from when the page opened; an agent that restarted starts its feed again at 1.
      if (lastEvent === undefined) lastEvent = now.events;
      else if (now.events < lastEvent) lastEvent = 0;
      if (now.events > lastEvent) {
        const page = await callAgent(dataDir, 'GET /v1/events', { after: String(lastEvent) });
        for (const event of page.events) send('event', event);
        lastEvent = page.last;
      }
      const moved =
        !mark ||
        now.index !== mark.index ||
        now.events !== mark.events ||
        now.members !== mark.members;
      if (moved) send('change', now);
      else res.write(': still here\n\n');
      mark = now;
    } catch (error) {
      if (!open) break;
      send('down', { error: failureOf(error).message });
      mark = undefined;
      await sleep(RETRY_MS);
    }
  }
  res.end();
}

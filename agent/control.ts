import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** What a route is asked: the query string, and the JSON body of a POST. */
export interface ControlRequest {
  query: URLSearchParams;
  body: unknown;
}

/** A control API route: returns the JSON body, or throws a ControlError for a non-200 answer. */
export type Route = (request: ControlRequest) => unknown;

// A stack of a few hundred services is well under this.
const MAX_BODY_BYTES = 4 * 2 ** 20;

export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The CLI's way into the local agent: HTTP with JSON bodies on a unix socket in the data dir,
 * readable and writable by the owner and group only. Nothing listens on the network for it.
 */
export class ControlServer {
  private readonly server: Server;

  constructor(
    private readonly routes: Record<string, Route>,
    private readonly log: Logger,
  ) {
    this.server = createServer((request, response) => this.answer(request, response));
  }

  async listen(path: string): Promise<void> {
    // A socket file left by a crashed agent would make listen fail; the data dir is ours alone.
    await rm(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    await chmod(path, 0o660);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://agent');
    const key = `${request.method} ${url.pathname}`;
    const route = this.routes[key];
    let status = 200;
    let body: unknown;
    try {
      if (!route) throw new ControlError(404, `no such control API route: ${key}`);
      body = await route({ query: url.searchParams, body: await readBody(request) });
    } catch (error) {
      status = error instanceof ControlError ? error.status : 500;
      body = { error: (error as Error).message };
      if (status === 500) this.log.error({ route: key, err: error }, 'control API request failed');
    }
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(`${JSON.stringify(body)}\n`);
  }
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new ControlError(413, `request body over ${MAX_BODY_BYTES / 2 ** 20} MiB`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new ControlError(400, `request body is not JSON: ${(error as Error).message}`);
  }
}

import { once } from 'node:events';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { UserError } from '../../mesh/user-error.js';
import {
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  UnavailableError,
  UnknownOutcomeError,
} from '../errors.js';
import type { ControlHandlers, RouteName } from './api.js';

// A stack of a few hundred services is well under this.
const MAX_BODY_BYTES = 4 * 2 ** 20;

class BodyTooLarge extends Error {}

/** The HTTP status of a refusal: the one place where the agent's error kinds meet HTTP. */
function statusOf(error: unknown): number {
  if (error instanceof InvalidError) return 400;
  if (error instanceof ForbiddenError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof BodyTooLarge) return 413;
  if (error instanceof UnavailableError) return 503;
  if (error instanceof UnknownOutcomeError) return 504;
  return 500;
}

/**
 * The CLI's way into the local agent: HTTP with JSON bodies on a unix socket in the data dir,
 * readable and writable by the owner and group only. Nothing listens on the network for it.
 */
export class ControlServer {
  private readonly server: Server;

  constructor(
    private readonly handlers: ControlHandlers,
    private readonly log: Logger,
  ) {
    this.server = createServer((request, response) => this.answer(request, response));
  }

  async listen(path: string): Promise<void> {
    try {
      // A socket file left by a crashed agent would make listen fail; the data dir is ours alone.
      await rm(path, { force: true });
      this.server.listen(path);
      await once(this.server, 'listening');
    } catch (error) {
      throw new UserError(
        `the control socket ${path} cannot be served (${(error as Error).message}): the CLI reaches the agent there`,
      );
    }
    await chmod(path, 0o660);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Answers one request, from the unix socket or (for an operator, see remote.ts) over mTLS. */
  async answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://agent');
    const key = `${request.method} ${url.pathname}`;
    let status = 200;
    let body: unknown;
    try {
      const handler = Object.hasOwn(this.handlers, key)
        ? (this.handlers[key as RouteName] as (request: unknown) => unknown)
        : undefined;
      if (!handler) throw new NotFoundError(`no such control API route: ${key}`);
      const asked =
        request.method === 'GET'
          ? Object.fromEntries(url.searchParams)
          : ((await readBody(request)) ?? {});
      body = await handler(asked);
    } catch (error) {
      status = statusOf(error);
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
      throw new BodyTooLarge(`request body over ${MAX_BODY_BYTES / 2 ** 20} MiB`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new InvalidError(`request body is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidError('request body must be a JSON object');
  return body;
}

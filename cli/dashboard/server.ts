/**
 * `mesh dashboard`'s web server: on 127.0.0.1 only, for whoever ran the command. A one-time
 * link (60 s) is traded for a session cookie; every request is checked for its Host (no DNS
 * rebinding), every write for its Origin; the page's own origin is the only one it talks to
 * (strict CSP, no CORS). Behind it, each API call is a control API call made as the command's
 * user: the local agent's socket, or a manager through the operator context.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RouteName } from '../../agent/control/api.js';
import { callAgent } from '../control-client.js';
import { API_ROUTES, type DeployAsked, deployFromText, failureOf } from './api.js';
import { changeStream } from './stream.js';

/** How long the printed link may wait to be opened; it opens once. */
export const LINK_TTL_MS = 60_000;
const COOKIE = 'mesh_dashboard';
/** The most a request body (a pasted stack file) may be. */
const MAX_BODY_BYTES = 1024 * 1024;

const ASSETS = new URL('../../../cli/dashboard/assets/', import.meta.url);
const STATIC: Record<string, { file: URL; type: string }> = {
  '/': { file: new URL('index.html', ASSETS), type: 'text/html; charset=utf-8' },
  '/app.js': { file: new URL('app.js', ASSETS), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: new URL('style.css', ASSETS), type: 'text/css; charset=utf-8' },
  // Preact, its hooks and htm in one module: no bundler, straight from node_modules.
  '/vendor/preact.js': {
    // htm's own entry is dist/htm.js: its package root is two up.
    file: pathToFileURL(
      join(
        dirname(dirname(createRequire(import.meta.url).resolve('htm'))),
        'preact/standalone.module.js',
      ),
    ),
    type: 'text/javascript; charset=utf-8',
  },
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

const sameSecret = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function page(title: string, text: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><link rel="stylesheet" href="/style.css"></head><body><main class="notice"><h1>${title}</h1><p>${text}</p></main></body></html>`;
}

export class DashboardServer {
  private readonly server: Server;
  /** Links not opened yet, by token, with when each stops working. */
  private readonly links = new Map<string, number>();
  private readonly sessions = new Set<string>();
  private port = 0;

  constructor(private readonly dataDir: string) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: Error) => {
        if (!res.headersSent) this.json(res, 500, { error: error.message });
        else res.destroy(error);
      });
    });
  }

  /** Listens on 127.0.0.1 (port 0: one the system picks); resolves with the port. */
  async listen(port: number): Promise<number> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** A link that logs in once, within LINK_TTL_MS. */
  link(): string {
    const token = randomBytes(24).toString('base64url');
    this.links.set(token, Date.now() + LINK_TTL_MS);
    return `http://127.0.0.1:${this.port}/?t=${token}`;
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.server.closeAllConnections();
    this.server.close();
  }

  private allowedHosts(): string[] {
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Another name resolving to 127.0.0.1 (DNS rebinding) is another site: refused.
    if (!this.allowedHosts().includes(req.headers.host ?? ''))
      return this.text(res, 403, `Host ${req.headers.host ?? '(none)'} is not this dashboard`);
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    const origin = req.headers.origin;
    if (write && !this.allowedHosts().some((h) => origin === `http://${h}`))
      return this.text(res, 403, `Origin ${origin ?? '(none)'} may not write here`);
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const token = url.searchParams.get('t');
    if (url.pathname === '/' && token !== null) return this.logIn(res, token);
    if (!this.hasSession(req))
      return this.html(
        res,
        401,
        page(
          'Not logged in',
          'Open the link <code>mesh dashboard</code> printed; each link works once, within a minute. Run <code>mesh dashboard</code> again for a new one.',
        ),
      );
    if (url.pathname === '/api/stream') return changeStream(this.dataDir, req, res);
    if (url.pathname.startsWith('/api/')) return this.api(req, res, url, write);
    const asset = STATIC[url.pathname];
    if (!asset || write) return this.text(res, 404, 'not found');
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type });
    res.end(readFileSync(asset.file));
  }

  private logIn(res: ServerResponse, token: string): void {
    const expires = [...this.links].find(([t]) => sameSecret(t, token))?.[1];
    this.links.delete(token);
    if (expires === undefined || expires < Date.now()) {
      this.html(
        res,
        401,
        page(
          'This link has expired',
          'Each link works once, within a minute. Run <code>mesh dashboard</code> again for a new one.',
        ),
      );
      return;
    }
    const session = randomBytes(32).toString('base64url');
    this.sessions.add(session);
    // The token leaves the address bar: the page is at / from now on.
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: '/',
      'set-cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
    });
    res.end();
  }

  private hasSession(req: IncomingMessage): boolean {
    const cookies = (req.headers.cookie ?? '').split(';').map((c) => c.trim());
    const value = cookies.find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
    return value !== undefined && [...this.sessions].some((s) => sameSecret(s, value));
  }

  /** `/api/<name>`: the control API route of that name, as the command's user. */
  private async api(req: IncomingMessage, res: ServerResponse, url: URL, write: boolean) {
    const name = url.pathname.slice('/api/'.length);
    if (name === 'deploy' && write) {
      const asked = JSON.parse(await bodyOf(req)) as DeployAsked;
      return this.json(res, 200, await deployFromText(this.dataDir, asked));
    }
    const route = `${write ? 'POST' : 'GET'} /v1/${name}` as RouteName;
    if (!API_ROUTES.has(route)) return this.json(res, 404, { error: `no API ${route}` });
    const asked = write
      ? (JSON.parse(await bodyOf(req)) as Record<string, unknown>)
      : Object.fromEntries(url.searchParams);
    try {
      this.json(res, 200, await callAgent(this.dataDir, route, asked as never));
    } catch (error) {
      const { status, message } = failureOf(error);
      this.json(res, status, { error: message });
    }
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private text(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${text}\n`);
  }

  private html(res: ServerResponse, status: number, html: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  }
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error(`a request body is at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

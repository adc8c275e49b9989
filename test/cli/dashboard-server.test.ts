/**
 * The dashboard's server on its own (no browser, no agent): the link logs in once and expires,
 * the session cookie, the Host and Origin checks, the headers that keep the page to itself, and
 * what the page is told when no agent answers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DashboardServer } from '../../cli/dashboard/server.js';

async function started(t: { teardown: (f: () => Promise<void>) => void }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'mesh-dashboard-'));
  const server = new DashboardServer(dataDir);
  const port = await server.listen(0);
  t.teardown(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { server, origin: `http://127.0.0.1:${port}`, port };
}

function ask(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const cookieOf = (headers: Record<string, string | string[] | undefined>) =>
  String(headers['set-cookie']).split(';')[0] as string;

test('the link logs in once: a session cookie, the token out of the address, then refused', async (t) => {
  const { server } = await started(t);
  const link = server.link();
  const first = await ask(link);
  t.is(first.status, 303);
  t.is(first.headers.location, '/');
  t.regex(
    String(first.headers['set-cookie']),
    /^mesh_dashboard=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/$/,
  );
  const again = await ask(link);
  t.is(again.status, 401);
  t.regex(again.body, /This link has expired.*Run <code>mesh dashboard<\/code> again/s);
  const page = await ask(new URL('/', link).href, { headers: { cookie: cookieOf(first.headers) } });
  t.is(page.status, 200);
  t.regex(page.body, /<script type="module" src="\/app\.js">/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  t.is(page.headers['access-control-allow-origin'], undefined, 'no CORS');
});

test('without a session nothing is shown; a made-up token or cookie is not one', async (t) => {
  const { origin } = await started(t);
  t.is((await ask(`${origin}/api/stacks`)).status, 401);
  t.is((await ask(`${origin}/?t=made-up`)).status, 401);
  t.is((await ask(`${origin}/`, { headers: { cookie: 'mesh_dashboard=made-up' } })).status, 401);
});

test('another Host (DNS rebinding) and a write from another Origin are refused', async (t) => {
  const { server, origin, port } = await started(t);
  const cookie = cookieOf((await ask(server.link())).headers);
  const rebound = await ask(`${origin}/api/stacks`, {
    headers: { cookie, host: `evil.example:${port}` },
  });
  t.is(rebound.status, 403);
  t.regex(rebound.body, /Host evil\.example:\d+ is not this dashboard/);
  const forged = await ask(`${origin}/api/services/scale`, {
    method: 'POST',
    headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' },
    body: '{"service":"a.b","replicas":9}',
  });
  t.is(forged.status, 403);
  t.regex(forged.body, /Origin http:\/\/evil\.example may not write here/);
  const unsigned = await ask(`${origin}/api/services/scale`, {
    method: 'POST',
    headers: { cookie },
    body: '{}',
  });
  t.is(unsigned.status, 403, 'a write without an Origin is refused too');
  t.is((await ask(`${origin}/`, { headers: { cookie, host: `localhost:${port}` } })).status, 200);
});

test('only the routes the page needs are reachable; a daemon gone is said as such', async (t) => {
  const { server, origin } = await started(t);
  const cookie = cookieOf((await ask(server.link())).headers);
  const token = await ask(`${origin}/api/token`, { headers: { cookie } });
  t.is(token.status, 404);
  t.regex(token.body, /no API GET \/v1\/token/);
  const stacks = await ask(`${origin}/api/stacks`, { headers: { cookie } });
  t.is(stacks.status, 502);
  t.deepEqual(JSON.parse(stacks.body), { error: 'no mesh daemon on this node' });
});

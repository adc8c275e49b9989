import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { DATA_DIR, dataDirOf, parse, UsageError } from '../args.js';
import { callAgent } from '../control-client.js';
import { DashboardServer, LINK_TTL_MS } from './server.js';

/** Opens the link in the desktop's browser, where there is one; a server has none: nothing to do. */
function openInBrowser(url: string): void {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY && process.platform !== 'darwin') return;
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined); // no opener: the printed link is the way in
  child.unref();
}

/**
 * `mesh dashboard`: the cluster in a browser, on 127.0.0.1 of this machine (from a laptop:
 * ssh -L), for as long as the command runs; the link it prints logs in once.
 */
export async function dashboard(args: string[]): Promise<number> {
  const { values } = parse('dashboard', args, {
    ...DATA_DIR,
    port: { type: 'string' },
    'no-open': { type: 'boolean' },
  });
  const port = Number(values.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`dashboard: --port must be a port number, got "${values.port}"`);
  const dataDir = dataDirOf(values);
  // No agent to show (or no right to its socket): said now, not in the browser.
  await callAgent(dataDir, 'GET /v1/status', {});
  const server = new DashboardServer(dataDir);
  await server.listen(port);
  const link = server.link();
  process.stdout.write(`${link}\n`);
  process.stderr.write(
    `mesh: the dashboard, on this machine only; the link logs in once within ${LINK_TTL_MS / 1000}s (from elsewhere: ssh -L PORT:127.0.0.1:PORT). Ctrl-C ends it.\n`,
  );
  if (!values['no-open']) openInBrowser(link);
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await server.close();
  return 0;
}

/**
 * An agent that cannot start all its parts stops those it started, and exits saying why (loopback
 * 127.0.74.31): before, a control socket it could not serve left the transport listening, and the
 * process running without a control API.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { type AgentProcess, LocalCluster, stopAgents } from '../helpers/local-cluster.js';

const HOST = '127.0.74.31';
const cluster = await LocalCluster.create('start-failure');
test.after.always(() => cluster.close());

/** Whether this process can listen on the port now (nothing else holds it). */
function free(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

test('a part that fails to start stops the parts before it; the agent exits, naming it', async (t) => {
  const [agent] = (await cluster.start([HOST], 'sf')) as [AgentProcess];
  await stopAgents([agent]);
  // Something the agent may not remove sits where its control socket goes.
  const socket = join(agent.dataDir, 'control.sock');
  rmSync(socket, { force: true });
  mkdirSync(socket);
  writeFileSync(join(socket, 'keep'), 'not a socket');
  const again = cluster.spawn('sf1', ['agent']);
  const code = await Promise.race([
    again.exited,
    new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 60_000).unref()),
  ]);
  t.is(code, 1, 'it exits by itself, refused');
  const said = readFileSync(`${again.dataDir}.log`, 'utf8');
  t.regex(said, /mesh: the control socket .*control\.sock cannot be served/);
  t.notRegex(said, /did not stop cleanly|unexpected failure/);
  t.true(await free(HOST, 7946), 'its cluster port is free again');
});

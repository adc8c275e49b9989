/**
 * Autolock: real agents on this file's loopback block (127.0.60.0/24). A manager that restarts
 * stays locked until mesh unlock; its data dir (or a copy of it) opens nothing meanwhile.
 */
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  type AgentProcess,
  LocalCluster,
  meshOn,
  view,
  waitForControl,
} from '../../helpers/local-cluster.js';
import { ask, connected, credentialsOf } from '../../helpers/member-socket.js';
import { eventually } from '../../helpers/poll.js';

const HOSTS = ['127.0.60.1', '127.0.60.2', '127.0.60.3'];
const cluster = await LocalCluster.create('autolock');
test.after.always(() => cluster.close());

const lockOf = async (agent: AgentProcess) => (await view(agent)).lock;
const pkiFiles = (agent: AgentProcess) => readdirSync(join(agent.dataDir, 'pki')).sort();

/** Kills an agent and starts it again from its data dir, as after a reboot. */
async function restart(agents: AgentProcess[], i: number): Promise<AgentProcess> {
  const agent = agents[i] as AgentProcess;
  agent.child.kill('SIGKILL');
  await agent.exited;
  const again = cluster.spawn(`a${i + 1}`, ['agent']);
  agents[i] = again;
  await waitForControl(again);
  return again;
}

async function unlockWith(agent: AgentProcess, key: string) {
  const file = cluster.file('unlock.key', `${key}\n`);
  return meshOn(agent, 'unlock', '--key-file', file);
}

test('a restarted manager stays locked until mesh unlock; a copy of its data dir opens nothing', async (t) => {
  const agents = await cluster.start(HOSTS, 'a', ['--autolock']);
  await eventually(
    async () => {
      const views = await Promise.all(agents.map(view));
      return views.every((v) => v.raft.voters.length === 3 && v.lock === 'unlocked');
    },
    { what: 'three voters, each holding the key wrapped', timeoutMs: 40_000, intervalMs: 250 },
  );
  for (const agent of agents) {
    t.false(pkiFiles(agent).includes('secrets.key'), 'no voters’ key in plain text');
    t.true(pkiFiles(agent).includes('secrets.key.locked'));
  }
  const printed = await meshOn(agents[0] as AgentProcess, 'unlock-key');
  t.is(printed.code, 0, printed.stderr);
  const unlockKey = printed.stdout.trim();
  t.regex(unlockKey, /^MESH-UNLOCK-1-/);
  const secretFile = cluster.file('db_password', 'hunter2-hunter2\n');
  const stored = await meshOn(
    agents[0] as AgentProcess,
    'secret',
    'create',
    'db_password',
    secretFile,
  );
  t.is(stored.code, 0, stored.stderr);

  // A reboot: the manager comes back locked. It signs nothing: no token.
  const second = await restart(agents, 1);
  t.is(await lockOf(second), 'locked');
  const token = await meshOn(second, 'token');
  t.not(token.code, 0);
  t.regex(token.stderr, /locked \(autolock\).*mesh unlock/);

  // Its data dir, copied as a thief would: the key in it is wrapped, and asking another voter
  // for the key with the copy's own certificate is refused.
  const copy = join(cluster.root, 'stolen');
  cpSync(second.dataDir, copy, { recursive: true, filter: (path) => !path.endsWith('.sock') });
  t.false(existsSync(join(copy, 'pki', 'secrets.key')));
  const ws = await connected(agents[0] as AgentProcess, credentialsOf(second), '127.0.60.2');
  t.teardown(() => ws.close());
  await t.throwsAsync(ask(ws, 1, 'keys.fetch', {}), {
    message: /holds the voters' key already: with autolock on, it opens its own copy/,
  });

  // The wrong key is refused; the right one unlocks it.
  const wrong = await unlockWith(
    second,
    `MESH-UNLOCK-1-${Buffer.alloc(32, 7).toString('base64url')}`,
  );
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /not the unlock key/);
  t.is(await lockOf(second), 'locked');
  const unlocked = await unlockWith(second, unlockKey);
  t.is(unlocked.code, 0, unlocked.stderr);
  t.is(await lockOf(second), 'unlocked');
  t.is((await meshOn(second, 'token')).code, 0, 'it signs again');

  // A new unlock key: the one before opens nothing after the next reboot.
  const rotated = await meshOn(agents[0] as AgentProcess, 'unlock-key', '--rotate');
  t.is(rotated.code, 0, rotated.stderr);
  const newKey = rotated.stdout.trim();
  t.not(newKey, unlockKey);
  const third = await restart(agents, 2);
  t.is(await lockOf(third), 'locked');
  t.regex((await unlockWith(third, unlockKey)).stderr, /not the unlock key/);
  t.is((await unlockWith(third, newKey)).code, 0);

  // Autolock off: plain files again, and a reboot needs nothing.
  const off = await meshOn(agents[0] as AgentProcess, 'cluster', 'autolock', 'off');
  t.is(off.code, 0, off.stderr);
  for (const agent of agents) t.true(pkiFiles(agent).includes('secrets.key'));
  const again = await restart(agents, 1);
  t.is(await lockOf(again), 'off');
  t.is((await meshOn(again, 'token')).code, 0);
});

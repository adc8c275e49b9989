/**
 * `mesh init|join --install` and `mesh uninstall`, on a machine systemd does not run (as CI's):
 * the unit is written, passes `systemd-analyze verify`, and its ExecStart, run as systemd would
 * run it, is the node; uninstall makes it leave and removes the unit. Two nodes on 127.0.78.1-2,
 * each with a unit directory of its own (as two machines would have).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import type { NodeRow } from '../../agent/control/api.js';
import { removeRange } from '../helpers/local-cluster.js';
import { eventually } from '../helpers/poll.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const HOSTS = ['127.0.78.1', '127.0.78.2'];
const RANGES = ['10.250.78.0/24', '10.240.78.0/24'] as const;
const root = await mkdtemp(join(tmpdir(), 'mesh-install-'));
const started: ChildProcess[] = [];
test.after.always(async () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  // A killed agent leaves its ranges routed: they go with the test.
  for (const range of RANGES) await removeRange(range);
  await rm(root, { recursive: true, force: true });
});

/** The CLI with this machine's unit directory, to completion. */
async function meshWith(units: string, ...args: string[]) {
  return run(process.execPath, [MAIN, ...args], {
    env: { ...process.env, MESH_SYSTEMD_DIR: units },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

/** What the unit's ExecStart says, split as systemd splits it (no quoting needed here). */
function execStart(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '';
  return line.slice('ExecStart='.length).split(' ');
}

/** Runs the unit's command, as systemd would start the service. */
function startUnit(units: string): ChildProcess {
  const [file, ...args] = execStart(readFileSync(join(units, 'mesh.service'), 'utf8'));
  const child = spawn(file as string, args, { stdio: 'ignore' });
  started.push(child);
  return child;
}

const flags = (host: string) => [
  '--advertise',
  host,
  '--dns-port',
  '0',
  '--http-port',
  '0',
  '--https-port',
  '0',
  '--service-range',
  RANGES[0],
  '--bridge-range',
  RANGES[1],
];

test.serial(
  'init --install makes the node and a unit that runs it; a second --install is refused',
  async (t) => {
    const units = join(root, 'machine1');
    const dataDir = join(root, 'node1');
    const made = await meshWith(
      units,
      'init',
      '--install',
      ...flags(HOSTS[0] as string),
      '--data-dir',
      dataDir,
    );
    t.is(made.code, 0, made.stderr);
    t.regex(made.stdout, /^mesh: node n[0-9a-f]+ of cluster c[0-9a-f]+ is made in /m);
    t.regex(made.stdout, /systemd does not run this machine: wrote .*mesh\.service only/);
    const unit = readFileSync(join(units, 'mesh.service'), 'utf8');
    t.deepEqual(execStart(unit), [process.execPath, MAIN, 'agent', '--data-dir', dataDir]);
    t.regex(unit, /^After=network-online\.target docker\.service$/m);
    t.regex(unit, /^Restart=on-failure$/m);
    t.regex(unit, /^KillMode=mixed$/m);
    t.regex(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    t.regex(unit, /^RestartForceExitStatus=75$/m);
    t.regex(unit, /^WantedBy=multi-user\.target$/m);
    const verified = await run('systemd-analyze', ['verify', join(units, 'mesh.service')]).then(
      () => '',
      (error: { stderr: string }) => error.stderr,
    );
    t.is(verified, '', 'systemd-analyze verify passes');

    const again = await meshWith(
      units,
      'init',
      '--install',
      ...flags(HOSTS[0] as string),
      '--data-dir',
      join(root, 'other'),
    );
    t.is(again.code, 1);
    t.regex(again.stderr, /mesh\.service is there already .*"mesh uninstall" removes it first/);
    t.false(existsSync(join(root, 'other')), 'nothing made');
  },
);

test.serial(
  'the unit runs the node; join --install adds another; uninstall makes each leave',
  async (t) => {
    const [units1, units2] = [join(root, 'machine1'), join(root, 'machine2')];
    const [dataDir1, dataDir2] = [join(root, 'node1'), join(root, 'node2')];
    const first = startUnit(units1);
    const token = await eventually(
      async () => (await meshWith(units1, 'token', '--data-dir', dataDir1)).stdout.trim(),
      { what: 'the installed node answering with a token', timeoutMs: 30_000, intervalMs: 200 },
    );
    const joined = await meshWith(
      units2,
      'join',
      token,
      '--install',
      ...flags(HOSTS[1] as string).slice(0, 8),
      '--data-dir',
      dataDir2,
    );
    t.is(joined.code, 0, joined.stderr);
    const second = startUnit(units2);
    await eventually(
      async () => {
        const listed = await meshWith(units1, 'node', 'ls', '--json', '--data-dir', dataDir1);
        const nodes = listed.code === 0 ? (JSON.parse(listed.stdout) as NodeRow[]) : [];
        return nodes.filter((n) => n.status === 'alive').length === 2;
      },
      { what: 'both installed nodes alive', timeoutMs: 30_000, intervalMs: 200 },
    );

    const gone = await meshWith(units2, 'uninstall', '--data-dir', dataDir2);
    t.is(gone.code, 0, gone.stderr);
    t.regex(gone.stdout, /node n[0-9a-f]+ left the cluster/);
    t.regex(gone.stdout, /removed .*machine2\/mesh\.service/);
    t.regex(gone.stdout, /the data dir .*node2 is kept/);
    t.false(existsSync(join(units2, 'mesh.service')));
    await eventually(() => second.exitCode !== null || second.signalCode !== null, {
      what: 'the agent process ended',
    });
    // The other node saw it leave, not die.
    await eventually(
      async () => {
        const listed = await meshWith(units1, 'node', 'ls', '--json', '--data-dir', dataDir1);
        return (JSON.parse(listed.stdout) as NodeRow[]).some((n) => n.status === 'left');
      },
      { what: 'the uninstalled node seen as left', timeoutMs: 20_000, intervalMs: 200 },
    );

    t.is((await meshWith(units1, 'uninstall', '--data-dir', dataDir1)).code, 0);
    await eventually(() => first.exitCode !== null || first.signalCode !== null, {
      what: 'the first agent process ended',
    });
    const nothing = await meshWith(units1, 'uninstall', '--data-dir', dataDir1);
    t.is(nothing.code, 1);
    t.regex(nothing.stderr, /nothing to uninstall/);
  },
);

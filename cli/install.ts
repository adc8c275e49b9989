import { execFile } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Prepared } from '../agent/agent.js';
import { pollUntil } from '../mesh/poll.js';
import { UserError } from '../mesh/user-error.js';
import { DATA_DIR, dataDirOf, parse, UsageError } from './args.js';
import { callAgent, NoAgentError } from './control-client.js';

const run = promisify(execFile);
const UNIT = 'mesh.service';
/** How long `mesh uninstall` waits for the agent to leave: its tasks stop within their grace. */
const LEAVE_TIMEOUT_MS = 150_000;

/** Where the unit goes: /etc/systemd/system, or $MESH_SYSTEMD_DIR (a package's, a test's). */
function unitPath(): string {
  return join(process.env.MESH_SYSTEMD_DIR ?? '/etc/systemd/system', UNIT);
}

/** Whether systemd runs this machine, as sd_booted(3) tells it. */
function systemdRuns(): boolean {
  return existsSync('/run/systemd/system');
}

/**
 * The exit code of an agent stopped to restart (SIGHUP): the unit's RestartForceExitStatus makes
 * systemd start it again, whatever made it stop.
 */
export const RESTART_EXIT_CODE = 75;

/** A word of ExecStart, quoted when it holds what systemd would split or unescape. */
function execWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * The unit that runs this node's agent: after the network and the Docker Engine, restarted when
 * it fails or when `systemctl reload` made it stop to restart (its tasks left running), stopped
 * with SIGTERM to the agent alone (it leaves the cluster and stops its own tasks within their
 * grace periods) before anything else of the unit is killed.
 */
function serviceUnit(node: { command: string[]; nodeId: string; clusterId: string }): string {
  return [
    '[Unit]',
    `Description=mesh agent (node ${node.nodeId} of cluster ${node.clusterId})`,
    'Wants=network-online.target',
    'After=network-online.target docker.service',
    '',
    '[Service]',
    `ExecStart=${node.command.map(execWord).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=2',
    '# systemctl reload: the agent stops to restart (an upgrade), its tasks left running, and exits',
    `# with ${RESTART_EXIT_CODE}, which starts it again.`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    `RestartForceExitStatus=${RESTART_EXIT_CODE}`,
    '# SIGTERM to the agent alone: it leaves gracefully and stops its own tasks first.',
    'KillMode=mixed',
    'TimeoutStopSec=150',
    'LimitNOFILE=1048576',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Before anything is made: one node's unit per machine, and this command never replaces one. */
export function checkInstallable(): void {
  if (existsSync(unitPath()))
    throw new UserError(
      `${unitPath()} is there already (a node of this machine): "mesh uninstall" removes it first`,
    );
}

/**
 * `--install`: writes the unit for the node just made, and where systemd runs, enables and starts
 * it; says what it did, and where systemd does not run, how to start the node instead.
 */
export async function installService(node: Prepared): Promise<number> {
  const main = realpathSync(process.argv[1] ?? '');
  const command = [process.execPath, main, 'agent', '--data-dir', node.dataDir];
  const path = unitPath();
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, serviceUnit({ command, nodeId: node.nodeId, clusterId: node.clusterId }));
  const say = (line: string) => process.stdout.write(`mesh: ${line}\n`);
  say(`node ${node.nodeId} of cluster ${node.clusterId} is made in ${node.dataDir}`);
  if (main.includes(`${join('/', '_npx')}/`))
    say(
      'warning: mesh runs from the npx cache here, which npm may clean: install it (npm i -g @mesh-orchestrator/mesh) and --install again',
    );
  if (node.unlockKey)
    say(
      `autolock is on: the service starts locked; keep this unlock key for "mesh unlock":\n  ${node.unlockKey}`,
    );
  if (!systemdRuns()) {
    say(`systemd does not run this machine: wrote ${path} only, for a machine where it does`);
    say(`start the node here with: ${command.map(execWord).join(' ')}`);
    return 0;
  }
  await run('systemctl', ['daemon-reload']);
  await run('systemctl', ['enable', '--now', UNIT]);
  say(`wrote ${path}, enabled and started it ("systemctl status mesh", "journalctl -u mesh")`);
  return 0;
}

/**
 * `mesh uninstall`: this node leaves the cluster gracefully — its tasks stop here and start
 * elsewhere — and its unit goes; its data dir is kept, and says where.
 */
export async function uninstall(args: string[]): Promise<number> {
  const { values } = parse('uninstall', args, { ...DATA_DIR });
  // It stops a process of this machine: never one a context's node named.
  if (process.env.MESH_CONTEXT)
    throw new UsageError(
      'uninstall acts on the node of this machine: run it there, without a context',
    );
  const dataDir = dataDirOf(values);
  const path = unitPath();
  const unit = existsSync(path);
  const say = (line: string) => process.stdout.write(`mesh: ${line}\n`);
  if (unit && systemdRuns()) {
    say('stopping mesh.service: the node leaves the cluster, its tasks stop within their grace');
    await run('systemctl', ['disable', '--now', UNIT]);
  } else {
    const status = await callAgent(dataDir, 'GET /v1/status', {}).catch((error: Error) => {
      if (error instanceof NoAgentError) return undefined;
      throw error;
    });
    if (!status && !unit)
      throw new UserError(`nothing to uninstall: no ${path}, and no agent runs with ${dataDir}`);
    if (status) await leave(status.pid, status.nodeId);
  }
  if (unit) {
    await rm(path);
    if (systemdRuns()) await run('systemctl', ['daemon-reload']);
    say(`removed ${path}`);
  }
  say(`the data dir ${dataDir} is kept: remove it to forget this node for good`);
  return 0;
}

/** Whether a process of this pid is there (one not ours to signal is there too). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Stops the agent with SIGTERM (it leaves gracefully) and waits until it is gone. */
async function leave(pid: number, nodeId: string): Promise<void> {
  process.stdout.write(
    `mesh: node ${nodeId} is leaving the cluster (its tasks stop within their grace)\n`,
  );
  process.kill(pid, 'SIGTERM');
  const gone = await pollUntil(() => !running(pid), {
    timeoutMs: LEAVE_TIMEOUT_MS,
    intervalMs: 200,
  });
  if (!gone)
    throw new UserError(
      `the agent (pid ${pid}) is still running after ${LEAVE_TIMEOUT_MS / 1000} s`,
    );
  process.stdout.write(`mesh: node ${nodeId} left the cluster\n`);
}

/**
 * What a local-cluster run (the demo, a test file, a benchmark) leaves on the host, and taking it
 * back. A run stopped normally or by a signal releases its own; one killed outright (kill -9: no
 * handler runs) leaves agents in process groups of their own, their tasks (processes and
 * containers), the tmpfs of their secrets, service addresses and routes. Each run's scratch
 * directory names its owner's pid and, when it chose them, its ranges; the next run of the same
 * label sweeps what a dead owner left (the label is the run prefix: `mesh-<label>-`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pino } from 'pino';
import { DataDir } from '../agent/datadir.js';
import { pingEngine } from '../agent/runtime/docker.js';
import { ProcessRuntime } from '../agent/runtime/process.js';
import { filesRoot } from '../agent/secrets/files.js';
import { HostAddresses } from '../proxy/host/addresses.js';

const run = promisify(execFile);
const OWNER = 'owner.pid';
const RANGES = 'ranges';

/**
 * A fresh directory for a run's data dirs and logs, named for its label and owned by this
 * process; what earlier runs of the label left when killed is swept first.
 */
export async function scratchDirectory(label: string): Promise<string> {
  await sweepLeftovers(label);
  const root = await mkdtemp(join(tmpdir(), `mesh-${label}-`));
  await writeFile(join(root, OWNER), `${process.pid}\n`);
  return root;
}

/** Notes the service and bridge ranges the run's cluster took, for a sweep to route off again. */
export async function recordRanges(root: string, ranges: string[]): Promise<void> {
  const known = await rangesOf(root);
  await writeFile(join(root, RANGES), `${[...new Set([...known, ...ranges])].join('\n')}\n`);
}

async function rangesOf(root: string): Promise<string[]> {
  const text = await readFile(join(root, RANGES), 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line !== '');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Releases the runs of the label whose owner is gone (a directory without an owner is skipped). */
export async function sweepLeftovers(label: string): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(`mesh-${label}-`)) continue;
    const root = join(tmpdir(), name);
    const owner = Number((await readFile(join(root, OWNER), 'utf8').catch(() => '')).trim());
    if (!owner || owner === process.pid || alive(owner)) continue;
    console.error(`mesh: removing what a killed run left (${root}, its owner ${owner} is gone)`);
    await releaseRun(root);
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Takes back what the run in `root` left on the host: any process still naming it (agents, a CLI
 * command), its agents' process tasks, containers, networks and secrets tmpfs, and the addresses
 * and routes of its ranges. The directory itself stays (the caller removes it, or keeps it for a
 * look at the logs).
 */
export async function releaseRun(root: string): Promise<void> {
  await run('pkill', ['-KILL', '-f', `${root}/`]).catch(() => undefined); // none left: fine
  const clusters = new Set<string>();
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dataDir = join(root, entry.name);
    const node = await new DataDir(dataDir).readClusterIfAny().catch(() => undefined);
    if (!node) continue;
    clusters.add(node.clusterId);
    await removeProcessTasks(dataDir);
    await removeFilesRoot(node.nodeId);
  }
  await removeClusterContainers(clusters);
  for (const range of await rangesOf(root)) await removeRange(range);
}

/** Process-runtime tasks outlive a killed agent (as containers do). */
async function removeProcessTasks(dataDir: string): Promise<void> {
  const runtime = new ProcessRuntime({
    dir: new DataDir(dataDir).tasksDir,
    hostIp: '127.0.0.1',
    log: pino({ level: 'silent' }),
  });
  for (const task of await runtime.list()) await runtime.remove(task.taskId, 0);
}

/** Unmounts and removes the secrets tmpfs of the node, if it made one. */
async function removeFilesRoot(nodeId: string): Promise<void> {
  const root = filesRoot(nodeId);
  await run('umount', [root]).catch(() => undefined); // not mounted: nothing to undo
  await rm(root, { recursive: true, force: true });
}

/** The containers, networks and volumes of the clusters, when an engine answers. */
async function removeClusterContainers(clusterIds: ReadonlySet<string>): Promise<void> {
  if (clusterIds.size === 0) return;
  const docker = new Docker();
  const reachable = await pingEngine(docker).then(
    () => true,
    () => false, // no engine here: the run ran no containers
  );
  if (!reachable) return;
  for (const id of clusterIds) await removeLabelled(docker, `mesh.cluster=${id}`);
}

/**
 * Removes every container carrying the label, whatever state it is in, then the networks and
 * volumes carrying it.
 */
export async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove()));
  const { Volumes } = await docker.listVolumes({ filters: { label: [label] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove()));
}

/** Removes the range's addresses from lo and its unreachable route, if any are left. */
export async function removeRange(range: string): Promise<void> {
  const addresses = new HostAddresses();
  // Nothing left (the agents removed it on leaving) is the usual case, not a failure.
  await addresses.sync(range, new Set()).catch(() => undefined);
  await run('ip', ['route', 'del', 'unreachable', range]).catch(() => undefined);
}

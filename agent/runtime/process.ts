import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { pollUntil } from '../../mesh/poll.js';
import { everyShared } from '../../mesh/shared-interval.js';
import {
  type LogPage,
  type Runtime,
  RuntimeError,
  type TaskExit,
  type TaskObservation,
  type TaskSpec,
  type TaskUsage,
} from './runtime.js';

export interface ProcessRuntimeOptions {
  /** Where task state and logs live (inside the agent's data dir). */
  dir: string;
  /** The node's address: tasks are told to listen here. */
  hostIp: string;
  log: Logger;
  /** How often tasks this agent did not start itself (adopted after a restart) are checked. */
  pollMs?: number;
}

/** What survives an agent restart: enough to find the process again, and to be sure it is ours. */
interface TaskFile {
  taskId: string;
  pid: number;
  /** The kernel's start time of the process (/proc/PID/stat), so a recycled PID is not taken for it. */
  startTicks: string;
  startedAt: string;
  ports: TaskObservation['ports'];
}

/** /proc/PID/stat from its fourth field (state) on; undefined when there is no such process. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // no such process
    throw error;
  }
}

function startTicks(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/** The kernel's clock ticks per second for /proc times (USER_HZ: 100 on every Linux port). */
const NS_PER_TICK = 1e9 / 100;

/**
 * What the task's process has used: its CPU time and its children's that it waited for (utime,
 * stime, cutime, cstime), and its resident memory. Children still running are not counted: a
 * process runtime has no cgroup to sum them in.
 */
function processUsage(state: { pid: number; startTicks: string }): TaskUsage | undefined {
  const fields = procStat(state.pid);
  if (!fields || fields[19] !== state.startTicks) return undefined;
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return { cpuNs: ticks * NS_PER_TICK, memoryBytes: rssKb * 1024 };
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Runs tasks as plain processes (like Nomad's raw_exec), for hosts without a container engine.
 * No isolation and no image: the command must exist on the host. Each published port gets a free
 * host port on the node address, passed as $PORT (the first) and $MESH_PORT_<target>.
 */
export class ProcessRuntime implements Runtime {
  private readonly listeners = new Set<(taskId: string) => void>();
  /** Exit codes of the processes we spawned; adopted ones are only seen to be gone. */
  private readonly exits = new Map<string, TaskExit>();
  private readonly children = new Set<string>();
  private stopPolling: (() => void) | undefined;

  constructor(private readonly options: ProcessRuntimeOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  }

  async start(spec: TaskSpec): Promise<TaskObservation> {
    const [file, ...args] = [...(spec.entrypoint ?? []), ...(spec.command ?? [])];
    if (!file) throw new RuntimeError(`task ${spec.taskId}: the process runtime needs a command`);
    const { hostIp } = this.options;
    const ports: TaskObservation['ports'] = [];
    for (const p of spec.ports)
      ports.push({
        target: p.target,
        protocol: p.protocol,
        hostIp,
        hostPort: p.hostPort ?? (await freePort(hostIp)),
      });
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      ...spec.env,
      MESH_HOST: hostIp,
      MESH_TASK: spec.taskId,
      ...Object.fromEntries(ports.map((p) => [`MESH_PORT_${p.target}`, String(p.hostPort)])),
    };
    if (ports[0]) env.PORT = String(ports[0].hostPort);
    // No container to put files at their targets: a process finds each by its name's variable.
    for (const file of spec.files ?? [])
      env[`MESH_FILE_${basename(file.target).replace(/\W/g, '_').toUpperCase()}`] = file.source;
    const logFd = openSync(this.logFile(spec.taskId), 'a', 0o600);
    const child = spawn(file, args, { env, detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) =>
        reject(new RuntimeError(`task ${spec.taskId}: cannot run "${file}": ${error.message}`)),
      );
    });
    const pid = child.pid as number;
    child.unref(); // tasks outlive the agent, which adopts them again when it restarts
    this.children.add(spec.taskId);
    child.once('exit', (code, signal) => {
      const exit = {
        taskId: spec.taskId,
        exitCode: code ?? 128,
        reason: signal ? `killed by ${signal}` : `exited with code ${code}`,
      };
      this.ended(exit);
    });
    const state: TaskFile = {
      taskId: spec.taskId,
      pid,
      startTicks: startTicks(pid) ?? '',
      startedAt: new Date().toISOString(),
      ports,
    };
    writeFileSync(this.stateFile(spec.taskId), JSON.stringify(state), { mode: 0o600 });
    return { taskId: spec.taskId, state: 'running', ports, startedAt: state.startedAt };
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    const state = this.read(taskId);
    if (!state || !this.alive(state)) return;
    this.signal(state, 'SIGTERM');
    const ended = await pollUntil(() => !this.alive(state), { timeoutMs: graceMs, intervalMs: 50 });
    if (!ended) this.signal(state, 'SIGKILL');
  }

  async remove(taskId: string, graceMs: number): Promise<void> {
    await this.stop(taskId, graceMs);
    rmSync(this.stateFile(taskId), { force: true });
    rmSync(this.logFile(taskId), { force: true });
    this.exits.delete(taskId);
  }

  async logs(taskId: string, cursor: string | undefined, tail: number): Promise<LogPage> {
    let text: Buffer;
    try {
      text = readFileSync(this.logFile(taskId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], cursor: '0' };
      throw error;
    }
    // Only whole lines: a line still being written comes with the next page.
    const end = text.lastIndexOf(10) + 1;
    const from = cursor ? Math.min(Number(cursor), end) : 0;
    const lines = text.subarray(from, end).toString('utf8').split('\n').slice(0, -1);
    return { lines: cursor ? lines : lines.slice(-tail), cursor: String(end) };
  }

  async inspect(taskId: string): Promise<TaskObservation | undefined> {
    const state = this.read(taskId);
    return state && this.observe(state);
  }

  async usage(taskIds: readonly string[]): Promise<Map<string, TaskUsage>> {
    const usage = new Map<string, TaskUsage>();
    for (const taskId of taskIds) {
      const state = this.read(taskId);
      const used = state && !this.exits.has(taskId) ? processUsage(state) : undefined;
      if (used) usage.set(taskId, used);
    }
    return usage;
  }

  async list(): Promise<TaskObservation[]> {
    return readdirSync(this.options.dir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => this.read(name.slice(0, -'.json'.length)))
      .filter((state): state is TaskFile => state !== undefined)
      .map((state) => this.observe(state));
  }

  async onChange(listener: (taskId: string) => void): Promise<void> {
    this.listeners.add(listener);
    this.stopPolling ??= everyShared(this.options.pollMs ?? 1000, () => this.checkAdopted());
  }

  async close(): Promise<void> {
    this.stopPolling?.();
  }

  private observe(state: TaskFile): TaskObservation {
    const base = { taskId: state.taskId, ports: state.ports, startedAt: state.startedAt };
    if (this.alive(state)) return { ...base, state: 'running' };
    const exit = this.exits.get(state.taskId);
    if (exit) return { ...base, state: 'exited', exitCode: exit.exitCode, reason: exit.reason };
    return {
      ...base,
      state: 'exited',
      reason: 'ended while the agent was not watching (exit code unknown)',
    };
  }

  /**
   * Processes started by an earlier agent run have no exit event for us: look for them. Each
   * round on its own: one that fails (out of file descriptors) is logged, the next one tries.
   */
  private checkAdopted(): void {
    try {
      this.lookForEnded();
    } catch (error) {
      this.options.log.warn(
        { reason: (error as Error).message },
        'could not look at adopted tasks',
      );
    }
  }

  private lookForEnded(): void {
    for (const state of readdirSync(this.options.dir).filter((n) => n.endsWith('.json'))) {
      const taskId = state.slice(0, -'.json'.length);
      if (this.children.has(taskId) || this.exits.has(taskId)) continue;
      const task = this.read(taskId);
      if (task && !this.alive(task))
        this.ended({
          taskId,
          exitCode: -1,
          reason: 'ended (exit code unknown: started by an earlier agent run)',
        });
    }
  }

  private ended(exit: TaskExit): void {
    this.exits.set(exit.taskId, exit);
    for (const listener of this.listeners) listener(exit.taskId);
  }

  private alive(state: TaskFile): boolean {
    return (
      startTicks(state.pid) === state.startTicks &&
      state.startTicks !== '' &&
      !this.exits.has(state.taskId)
    );
  }

  private signal(state: TaskFile, signal: NodeJS.Signals): void {
    try {
      process.kill(-state.pid, signal); // the whole process group: the task's own children too
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  private stateFile(taskId: string): string {
    return join(this.options.dir, `${taskId}.json`);
  }

  private logFile(taskId: string): string {
    return join(this.options.dir, `${taskId}.log`);
  }

  private read(taskId: string): TaskFile | undefined {
    try {
      return JSON.parse(readFileSync(this.stateFile(taskId), 'utf8')) as TaskFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.options.log.warn(
        { task: taskId, reason: (error as Error).message },
        'task state file unreadable',
      );
      return undefined;
    }
  }
}

import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { type RegistryAuth, registryHost } from '../../mesh/api/registries.js';
import type { NamedVolume, PullPolicy } from '../../mesh/api/services.js';
import { LimitedLog } from '../../mesh/limited-log.js';
import type { HostNetworks } from '../../proxy/source-policy.js';
import { containerConfig } from './docker-config.js';
import { LABEL } from './docker-labels.js';
import { DockerNetworks } from './docker-networks.js';
import { engineHas } from './engine-has.js';
import { listeningIn } from './listening.js';
import {
  type LogPage,
  type Runtime,
  RuntimeError,
  type TaskNetwork,
  type TaskObservation,
  type TaskSpec,
  type TaskUsage,
} from './runtime.js';

export interface DockerRuntimeOptions {
  docker: Docker;
  clusterId: string;
  nodeId: string;
  /** The node's address: published ports bind here, never on every interface. */
  hostIp: string;
  log: Logger;
}

type ContainerInfo = Awaited<ReturnType<Docker.Container['inspect']>>;

function observe(taskId: string, info: ContainerInfo): TaskObservation {
  const ports: TaskObservation['ports'] = [];
  for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const [target, protocol] = key.split('/');
    for (const b of bindings ?? []) {
      ports.push({
        target: Number(target),
        protocol: protocol === 'udp' ? 'udp' : 'tcp',
        hostIp: b.HostIp,
        hostPort: Number(b.HostPort),
      });
    }
  }
  const address = Object.values(info.NetworkSettings?.Networks ?? {}).find(
    (n) => n.IPAddress,
  )?.IPAddress;
  const { State } = info;
  const state = State.Running ? 'running' : State.OOMKilled || State.Error ? 'failed' : 'exited';
  const reason = State.OOMKilled
    ? 'killed: out of memory'
    : State.Error || (State.Running ? undefined : `exited with code ${State.ExitCode}`);
  const observation: TaskObservation = {
    taskId,
    state,
    exitCode: State.Running ? undefined : State.ExitCode,
    reason,
    ports,
    startedAt: State.StartedAt,
  };
  if (State.Running && address) observation.address = address;
  const exposed = Object.keys(info.Config?.ExposedPorts ?? {})
    .filter((key) => key.endsWith('/tcp'))
    .map((key) => Number.parseInt(key, 10))
    .sort((a, b) => a - b);
  if (exposed.length > 0) observation.exposed = exposed;
  const health = State.Health as
    | { Status: string; FailingStreak: number; Log?: Array<{ ExitCode: number; Output: string }> }
    | undefined;
  if (State.Running && health && health.Status !== 'none') {
    const last = health.Log?.at(-1);
    observation.health = {
      status: health.Status as 'starting' | 'healthy' | 'unhealthy',
      detail: last
        ? `${health.FailingStreak} failures in a row; last: exit ${last.ExitCode}${last.Output.trim() ? `, ${last.Output.trim().slice(0, 200)}` : ''}`
        : undefined,
    };
  }
  return observation;
}

/** Splits the engine's log stream (8-byte frame headers, since the container has no TTY) into lines. */
function demultiplex(raw: Buffer): string[] {
  const text: string[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const size = raw.readUInt32BE(offset + 4);
    text.push(raw.subarray(offset + 8, offset + 8 + size).toString('utf8'));
    offset += 8 + size;
  }
  return text
    .join('')
    .split('\n')
    .filter((line) => line !== '');
}

/** Resolves when the engine answers a ping, rejects when it does not within 3 s. */
export function pingEngine(docker: Docker): Promise<unknown> {
  return Promise.race([
    docker.ping(),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error('no answer within 3 s')), 3000).unref(),
    ),
  ]);
}

/** What the container listing says, without inspecting each one (inspect has the details). */
function summarize(c: Docker.ContainerInfo): TaskObservation {
  const running = c.State === 'running';
  const exit = /^Exited \((-?\d+)\)/.exec(c.Status);
  const health = /\((healthy|unhealthy|health: starting)\)/.exec(c.Status)?.[1];
  const observation: TaskObservation = {
    taskId: c.Labels[LABEL.task] ?? '',
    state: running ? 'running' : 'exited',
    exitCode: exit ? Number(exit[1]) : undefined,
    reason: running ? undefined : exit ? `exited with code ${exit[1]}` : c.Status,
    ports: c.Ports.filter((p) => p.PublicPort).map((p) => ({
      target: p.PrivatePort,
      protocol: p.Type === 'udp' ? 'udp' : 'tcp',
      hostIp: p.IP ?? '',
      hostPort: p.PublicPort,
    })),
  };
  if (running && health)
    observation.health = {
      status: health === 'health: starting' ? 'starting' : (health as 'healthy' | 'unhealthy'),
    };
  return observation;
}

/** Docker Engine runtime, through dockerode: one container per task. */
export class DockerRuntime implements Runtime {
  private readonly listeners = new Set<(taskId: string) => void>();
  /** Images known to be on this engine: a start does not ask again (a removed one is noticed). */
  private readonly images = new Set<string>();
  private events: Promise<Readable> | undefined;
  /** Why listening ports cannot be read, a line a minute. */
  private readonly listeningWarnings: LimitedLog;

  private readonly networks: DockerNetworks;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.networks = new DockerNetworks(options);
    this.listeningWarnings = new LimitedLog(options.log, 1);
  }

  private get ownLabels(): string[] {
    return [`${LABEL.cluster}=${this.options.clusterId}`, `${LABEL.node}=${this.options.nodeId}`];
  }

  async start(spec: TaskSpec): Promise<TaskObservation> {
    const { hostIp, clusterId, nodeId } = this.options;
    await this.ensureImage(spec.image, spec.pull ?? 'missing', spec.registryAuth);
    const networks = spec.network
      ? await Promise.all(
          spec.network.keys.map((key) =>
            this.networks.ensure(key, (spec.network as TaskNetwork).bridgeRange),
          ),
        )
      : [];
    for (const volume of spec.namedVolumes ?? []) await this.ensureVolume(volume);
    const container = await this.create(
      spec.image,
      containerConfig(spec, { hostIp, clusterId, nodeId }, networks[0]),
    );
    try {
      for (const name of networks.slice(1))
        await this.options.docker.getNetwork(name).connect({ Container: container.id });
      await container.start();
    } catch (error) {
      await container.remove({ force: true }).catch((e: Error) => this.notGone(spec.taskId, e));
      throw new RuntimeError(
        `task ${spec.taskId}: container did not start: ${(error as Error).message}`,
      );
    }
    return this.observed(spec.taskId, await container.inspect());
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    for (const c of await this.containers(taskId))
      if (c.State === 'running')
        await this.options.docker
          .getContainer(c.Id)
          .stop({ t: Math.ceil(graceMs / 1000) })
          .catch((error: Error) => this.notGone(taskId, error));
  }

  async remove(taskId: string, graceMs: number): Promise<void> {
    await this.stop(taskId, graceMs);
    for (const c of await this.containers(taskId))
      await this.options.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch((error: Error) => this.notGone(taskId, error));
    await this.networks
      .prune()
      .catch((error: Error) =>
        this.options.log.warn({ task: taskId, reason: error.message }, 'networks not pruned'),
      );
  }

  async inspect(taskId: string): Promise<TaskObservation | undefined> {
    const [c] = await this.containers(taskId);
    if (!c) return undefined;
    return this.observed(taskId, await this.options.docker.getContainer(c.Id).inspect());
  }

  /** What inspect says, with the ports the running container's processes listen on. */
  private async observed(taskId: string, info: ContainerInfo): Promise<TaskObservation> {
    const observation = observe(taskId, info);
    if (!info.State.Running || !info.State.Pid) return observation;
    try {
      observation.listening = await listeningIn(info.State.Pid);
    } catch (error) {
      // An agent in a PID namespace of its own, or without the rights: declared and image ports
      // still route.
      this.listeningWarnings.warn(
        'listening',
        { task: taskId, pid: info.State.Pid, reason: (error as Error).message },
        'the ports a container listens on cannot be read',
      );
    }
    return observation;
  }

  /**
   * Makes a named volume with its driver and options, labelled as mesh's, unless the engine has
   * it (made by an earlier task: its data stays).
   */
  private async ensureVolume(volume: NamedVolume): Promise<void> {
    const { docker, clusterId, nodeId } = this.options;
    if (await engineHas(docker.getVolume(volume.name).inspect())) return;
    await docker.createVolume({
      Name: volume.name,
      Driver: volume.driver ?? 'local',
      DriverOpts: volume.driverOpts ?? {},
      Labels: { [LABEL.cluster]: clusterId, [LABEL.node]: nodeId },
    });
  }

  async list(): Promise<TaskObservation[]> {
    const containers = await this.options.docker.listContainers({
      all: true,
      filters: { label: this.ownLabels },
    });
    return containers.map(summarize);
  }

  /**
   * The engine's one-shot stats of each task's running container: its cgroup's CPU time, and its
   * memory less the inactive page cache (as `docker stats` shows it).
   */
  async usage(taskIds: readonly string[]): Promise<Map<string, TaskUsage>> {
    const wanted = new Set(taskIds);
    const running = await this.options.docker.listContainers({
      filters: { label: this.ownLabels, status: ['running'] },
    });
    const usage = new Map<string, TaskUsage>();
    await Promise.all(
      running.map(async (c) => {
        const taskId = c.Labels[LABEL.task];
        if (!taskId || !wanted.has(taskId)) return;
        const stats = await this.options.docker
          .getContainer(c.Id)
          .stats({ stream: false, 'one-shot': true })
          .catch((error: Error) => {
            // Gone since the listing, or the engine busy: this sample goes without it.
            this.options.log.debug({ task: taskId, reason: error.message }, 'no stats');
            return undefined;
          });
        if (!stats?.cpu_stats?.cpu_usage) return;
        const memory = stats.memory_stats;
        const cache =
          (memory.stats as Record<string, number> | undefined)?.inactive_file ??
          memory.stats?.total_inactive_file ??
          0;
        usage.set(taskId, {
          cpuNs: stats.cpu_stats.cpu_usage.total_usage,
          memoryBytes: Math.max(0, (memory.usage ?? 0) - cache),
        });
      }),
    );
    return usage;
  }

  async logs(taskId: string, cursor: string | undefined, tail: number): Promise<LogPage> {
    const [c] = await this.containers(taskId);
    if (!c) return { lines: [], cursor: cursor ?? '0' };
    const container = this.options.docker.getContainer(c.Id);
    const raw = (await container
      .logs({
        stdout: true,
        stderr: true,
        timestamps: true,
        follow: false,
        ...(cursor ? { since: Number(cursor) } : { tail }),
      })
      .catch(async (error: Error) => {
        if (!/does not support reading/.test(error.message)) throw error;
        const driver = (await container.inspect()).HostConfig.LogConfig?.Type;
        throw new RuntimeError(
          `its logging driver (${driver}) keeps the engine from reading its logs: read them where that driver sends them`,
        );
      })) as unknown as Buffer;
    const lines = demultiplex(raw);
    let next = cursor ?? '0';
    const out: string[] = [];
    for (const line of lines) {
      const space = line.indexOf(' ');
      const seconds = Date.parse(line.slice(0, space)) / 1000;
      // `since` is inclusive at whole-second precision: skip what an earlier page returned.
      if (cursor && seconds <= Number(cursor)) continue;
      out.push(line.slice(space + 1));
      if (Number.isFinite(seconds)) next = String(seconds);
    }
    return { lines: out, cursor: next };
  }

  /** The cluster's bridges on this engine and the containers on them. */
  hostNetworks(): Promise<HostNetworks> {
    return this.networks.onHost();
  }

  async onChange(listener: (taskId: string) => void): Promise<void> {
    this.listeners.add(listener);
    this.events ??= this.watch();
    await this.events;
  }

  async close(): Promise<void> {
    const events = this.events;
    this.events = undefined;
    (await events)?.destroy();
  }

  private containers(taskId: string) {
    return this.options.docker.listContainers({
      all: true,
      filters: { label: [...this.ownLabels, `${LABEL.task}=${taskId}`] },
    });
  }

  /** A container that no longer stops or goes away is a problem worth a line, not a crash. */
  private notGone(taskId: string, error: Error & { statusCode?: number }): void {
    if (error.statusCode === 404 || error.statusCode === 304) return; // already gone, or already stopped
    this.options.log.warn({ task: taskId, reason: error.message }, 'container not removed');
  }

  /** Creates the container; an image removed since it was seen is looked for again next time. */
  private async create(image: string, options: Docker.ContainerCreateOptions) {
    try {
      return await this.options.docker.createContainer(options);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) this.images.delete(image);
      throw error;
    }
  }

  /**
   * The image on this node, per the pull policy: pulled when missing; pulled before each task
   * (`always`: a pull that fails falls back to the image already here, as Swarm's agent does);
   * never pulled.
   */
  private async ensureImage(
    image: string,
    pull: PullPolicy,
    auth: RegistryAuth | undefined,
  ): Promise<void> {
    const { log } = this.options;
    if (pull === 'always') {
      try {
        await this.pull(image, auth);
        return;
      } catch (error) {
        if (!(await this.present(image))) throw error;
        log.warn(
          { image, reason: (error as Error).message },
          'pull_policy always: the pull failed, using the image already on this node',
        );
        return;
      }
    }
    if (this.images.has(image) || (await this.present(image))) return;
    if (pull === 'never')
      throw new RuntimeError(`image ${image} is not on this node, and pull_policy is never`);
    await this.pull(image, auth, 'is not on this node and could not be pulled');
  }

  /** Whether the engine holds the image (remembered once it did). */
  private async present(image: string): Promise<boolean> {
    try {
      await this.options.docker.getImage(image).inspect();
      this.images.add(image);
      return true;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
      return false;
    }
  }

  private async pull(
    image: string,
    auth: RegistryAuth | undefined,
    failure = 'could not be pulled',
  ): Promise<void> {
    const { docker } = this.options;
    try {
      const stream = await docker.pull(image, auth ? { authconfig: auth } : {});
      await new Promise((resolve, reject) =>
        docker.modem.followProgress(stream, (e) => (e ? reject(e) : resolve(undefined))),
      );
      this.images.add(image);
    } catch (error) {
      const reason = (error as Error).message;
      // The engine's words for a registry that wants a login; say how to give it one.
      const hint =
        !auth && /unauthorized|no basic auth|authentication required|denied/i.test(reason)
          ? ` (a private registry? log in with: mesh registry login ${registryHost(image)})`
          : '';
      throw new RuntimeError(`image ${image} ${failure}: ${reason}${hint}`);
    }
  }

  /**
   * Throws the registry's refusal, in the engine's words, unless it takes this login (the
   * engine asks it, as `docker login` does).
   */
  async checkLogin(auth: RegistryAuth): Promise<void> {
    try {
      await this.options.docker.checkAuth(auth);
    } catch (error) {
      const { json, message } = error as { json?: { message?: string }; message: string };
      throw new Error(json?.message ?? message);
    }
  }

  /** Container deaths and health changes, from the engine's event stream, for this node's tasks. */
  private async watch(): Promise<Readable> {
    const { docker, log } = this.options;
    const stream = (await docker.getEvents({
      // One label only: the events API ORs repeated label filters (listing containers ANDs them),
      // and a node ID is unique across clusters anyway.
      filters: {
        type: ['container'],
        event: ['die', 'health_status'],
        label: [`${LABEL.node}=${this.options.nodeId}`],
      },
    })) as Readable;
    let buffer = '';
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        this.dispatch(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    });
    stream.on('error', (error: Error) =>
      log.warn({ reason: error.message }, 'Docker event stream failed'),
    );
    return stream;
  }

  private dispatch(line: string): void {
    if (!line.trim()) return;
    let event: { Actor?: { Attributes?: Record<string, string> } };
    try {
      event = JSON.parse(line);
    } catch (error) {
      this.options.log.warn(
        { reason: (error as Error).message },
        'unreadable Docker event skipped',
      );
      return;
    }
    const attributes = event.Actor?.Attributes ?? {};
    const taskId = attributes[LABEL.task];
    if (!taskId || attributes[LABEL.cluster] !== this.options.clusterId) return;
    for (const listener of this.listeners) listener(taskId);
  }
}

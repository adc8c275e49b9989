import Docker from 'dockerode';
import type { Logger } from 'pino';
import type { RegistryAuth } from '../../mesh/api/registries.js';
import type { RuntimeKind } from '../../mesh/api/services.js';
import type { HostNetworks } from '../../proxy/source-policy.js';
import { DockerRuntime, pingEngine } from './docker.js';
import { ProcessRuntime } from './process.js';
import type { Runtime } from './runtime.js';

export interface RuntimesOptions {
  clusterId: string;
  nodeId: string;
  /** The node's address: published ports bind here, process tasks listen here. */
  hostIp: string;
  /** Where the process runtime keeps its tasks' state and output. */
  tasksDir: string;
  log: Logger;
}

/** How often a node without an engine looks for one again (dockerd may start after the agent). */
export const ENGINE_RETRY_MS = 5000;

/** The task runtimes this node offers, by kind, and why a kind it lacks is missing. */
export class Runtimes {
  private readonly added = new Set<(kind: RuntimeKind, runtime: Runtime) => void>();
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly options: RuntimesOptions,
    private readonly offered: Map<RuntimeKind, Runtime>,
    private docker: DockerRuntime | undefined,
    private readonly lacking: Map<RuntimeKind, string>,
  ) {}

  /**
   * Processes always; Docker through the engine's socket (or $DOCKER_HOST) when an engine answers.
   * Without one, the engine is looked for again every few seconds: a machine whose agent starts
   * before dockerd offers Docker once it answers, with no restart.
   */
  static async open(options: RuntimesOptions): Promise<Runtimes> {
    const offered = new Map<RuntimeKind, Runtime>([
      [
        'process',
        new ProcessRuntime({ dir: options.tasksDir, hostIp: options.hostIp, log: options.log }),
      ],
    ]);
    const runtimes = new Runtimes(options, offered, undefined, new Map());
    const reason = await runtimes.reachEngine();
    if (reason !== undefined) {
      options.log.warn(
        { reason, retryMs: ENGINE_RETRY_MS },
        'Docker Engine not reachable: docker services cannot run on this node until it is',
      );
      runtimes.lookForEngine();
    }
    return runtimes;
  }

  /** Why each kind this node lacks is missing, in words for the tasks that need it. */
  get missing(): ReadonlyMap<RuntimeKind, string> {
    return this.lacking;
  }

  /** Told of a runtime this node offers from now on (an engine that came up after the agent). */
  onAdded(listener: (kind: RuntimeKind, runtime: Runtime) => void): void {
    this.added.add(listener);
  }

  /** Offers Docker when the engine answers; else records why not and returns it. */
  private async reachEngine(): Promise<string | undefined> {
    const docker = new Docker();
    try {
      await pingEngine(docker);
    } catch (error) {
      const reason = (error as Error).message;
      this.lacking.set(
        'docker',
        `no Docker Engine reachable on node ${this.options.nodeId} (${reason}); only x-mesh runtime: process services run here`,
      );
      return reason;
    }
    this.docker = new DockerRuntime({ docker, ...this.options });
    this.offered.set('docker', this.docker);
    this.lacking.delete('docker');
    return undefined;
  }

  private lookForEngine(): void {
    this.retry = setTimeout(async () => {
      const reason = await this.reachEngine();
      if (this.closed) return;
      if (reason !== undefined) {
        this.lookForEngine();
        return;
      }
      this.retry = undefined;
      const docker = this.docker as DockerRuntime;
      this.options.log.info('Docker Engine reachable now: docker services can run on this node');
      for (const listener of this.added) listener('docker', docker);
    }, ENGINE_RETRY_MS);
    this.retry.unref();
  }

  /** The cluster's bridges on this node's engine and the containers on them (none without one). */
  async hostNetworks(): Promise<HostNetworks> {
    return (await this.docker?.hostNetworks()) ?? { bridges: [], containers: [] };
  }

  /** Asks a registry whether it takes a login, through the engine (undefined without one). */
  loginCheck(): ((auth: RegistryAuth) => Promise<void>) | undefined {
    const docker = this.docker;
    return docker && ((auth) => docker.checkLogin(auth));
  }

  get(kind: RuntimeKind): Runtime | undefined {
    return this.offered.get(kind);
  }

  /** What this node tells the cluster it offers (the scheduler places tasks by it). */
  kinds(): RuntimeKind[] {
    return [...this.offered.keys()].sort();
  }

  entries(): Array<[RuntimeKind, Runtime]> {
    return [...this.offered];
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await Promise.all([...this.offered.values()].map((r) => r.close()));
  }
}

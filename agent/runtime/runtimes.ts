import Docker from 'dockerode';
import type { Logger } from 'pino';
import type { RuntimeKind } from '../../mesh/api/services.js';
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

/** The task runtimes this node offers, by kind, and why a kind it lacks is missing. */
export class Runtimes {
  private constructor(
    private readonly offered: Map<RuntimeKind, Runtime>,
    private readonly docker: DockerRuntime | undefined,
    /** Why each kind this node lacks is missing, in words for the tasks that need it. */
    readonly missing: ReadonlyMap<RuntimeKind, string>,
  ) {}

  /**
   * Processes always; Docker through the engine's socket (or $DOCKER_HOST) when an engine answers.
   */
  static async open(options: RuntimesOptions): Promise<Runtimes> {
    const offered = new Map<RuntimeKind, Runtime>([
      [
        'process',
        new ProcessRuntime({ dir: options.tasksDir, hostIp: options.hostIp, log: options.log }),
      ],
    ]);
    const missing = new Map<RuntimeKind, string>();
    const docker = new Docker();
    let runtime: DockerRuntime | undefined;
    try {
      await pingEngine(docker);
      runtime = new DockerRuntime({ docker, ...options });
      offered.set('docker', runtime);
    } catch (error) {
      const reason = (error as Error).message;
      missing.set(
        'docker',
        `no Docker Engine reachable on node ${options.nodeId} (${reason}); only x-mesh runtime: process services run here`,
      );
      options.log.warn(
        { reason },
        'Docker Engine not reachable: docker services cannot run on this node',
      );
    }
    return new Runtimes(offered, runtime, missing);
  }

  /** The cluster's bridges on this node's engine (none without one). */
  async bridges(): Promise<Array<{ subnet: string; network: string }>> {
    return (await this.docker?.bridges()) ?? [];
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
    await Promise.all([...this.offered.values()].map((r) => r.close()));
  }
}

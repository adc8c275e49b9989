import type { Logger } from 'pino';
import { type ServiceRecord, serviceId } from '../../mesh/api/services.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import { repeatOneAtATime } from '../repeat.js';
import type { TaskUsage } from '../runtime/runtime.js';
import type { Runtimes } from '../runtime/runtimes.js';
import type { UsageReport } from './round.js';

/** How often each node samples its tasks and tells the leader; the leader decides as often. */
export const SAMPLE_MS = 5000;

/** A task's CPU time when last sampled. */
interface CpuSample {
  at: number;
  cpuNs: number;
}

/**
 * A task's usage in percent of what its service reserves (or, without a reservation, of its
 * limit): CPU between the last sample and this one (none on the first), memory now.
 */
export function percentUsed(
  resources: ServiceRecord['resources'],
  previous: CpuSample | undefined,
  now: number,
  usage: TaskUsage,
): { cpu?: number; memory?: number } {
  const { reservations, limits } = resources;
  const cpus = reservations.cpus || limits.cpus;
  const memory = reservations.memoryBytes || limits.memoryBytes;
  const used: { cpu?: number; memory?: number } = {};
  // A task restarted in between (less CPU time than before) starts over.
  if (cpus && previous && now > previous.at && usage.cpuNs >= previous.cpuNs)
    used.cpu = ((usage.cpuNs - previous.cpuNs) / ((now - previous.at) * 1e6) / cpus) * 100;
  if (memory) used.memory = (usage.memoryBytes / memory) * 100;
  return used;
}

export interface UsageSamplerOptions {
  nodeId: string;
  state: ClusterState;
  runtimes: Runtimes;
  /** Requests plus connections this node served per service, since some start. */
  served: () => Promise<Map<string, number>>;
  /** Sends the report to the leader. */
  deliver: (report: UsageReport) => void;
  log: Logger;
}

/**
 * Every node, every SAMPLE_MS, while any service autoscales: what its tasks of autoscaled
 * services use (the engine's stats, or /proc), and what it served of each, as percentages and
 * rates for the leader. Nothing of it goes through Raft.
 */
export class UsageSampler {
  private readonly cpu = new Map<string, CpuSample>();
  private served: { at: number; counts: Map<string, number> } | undefined;
  private stopSampling: (() => void) | undefined;

  constructor(private readonly options: UsageSamplerOptions) {}

  start(): void {
    this.stopSampling = repeatOneAtATime(
      SAMPLE_MS,
      () => this.sample(),
      (error) => this.options.log.warn({ err: error }, 'usage not sampled; trying again'),
    );
  }

  stop(): void {
    this.stopSampling?.();
  }

  private async sample(): Promise<void> {
    const { state, nodeId, runtimes } = this.options;
    const autoscaled = new Map(
      state
        .list('services')
        .filter((s) => s.value.autoscale && s.value.mode === 'replicated')
        .map((s) => [serviceId(s.value), s.value]),
    );
    if (autoscaled.size === 0) {
      this.cpu.clear();
      this.served = undefined;
      return;
    }
    const mine = state
      .list('tasks')
      .map((t) => t.value)
      .filter((t) => t.nodeId === nodeId && t.desired === 'running' && autoscaled.has(t.serviceId));
    const report: UsageReport = { tasks: [], served: [] };
    const seen = new Set<string>();
    for (const [kind, runtime] of runtimes.entries()) {
      const ofKind = mine.filter((t) => autoscaled.get(t.serviceId)?.runtime === kind);
      if (ofKind.length === 0) continue;
      const usage = await runtime.usage(ofKind.map((t) => t.id));
      const now = Date.now();
      for (const task of ofKind) {
        const used = usage.get(task.id);
        const service = autoscaled.get(task.serviceId);
        if (!used || !service) continue;
        seen.add(task.id);
        report.tasks.push({
          task: task.id,
          ...percentUsed(service.resources, this.cpu.get(task.id), now, used),
        });
        this.cpu.set(task.id, { at: now, cpuNs: used.cpuNs });
      }
    }
    for (const id of this.cpu.keys()) if (!seen.has(id)) this.cpu.delete(id);
    report.served = await this.servedRates(autoscaled);
    this.options.deliver(report);
  }

  /** Per autoscaled service with an rps target, what this node served per second since the last sample. */
  private async servedRates(
    autoscaled: Map<string, ServiceRecord>,
  ): Promise<UsageReport['served']> {
    const wanted = [...autoscaled].filter(([, s]) => s.autoscale?.targets.rps !== undefined);
    if (wanted.length === 0) return [];
    const counts = await this.options.served();
    const now = Date.now();
    const before = this.served;
    this.served = { at: now, counts };
    if (!before || now <= before.at) return [];
    const seconds = (now - before.at) / 1000;
    return wanted.flatMap(([id]) => {
      const count = counts.get(id) ?? 0;
      const previous = before.counts.get(id) ?? 0;
      // Counts that went down started over (an ingress worker restarted): no rate this time.
      return count < previous ? [] : [{ service: id, rps: (count - previous) / seconds }];
    });
  }
}

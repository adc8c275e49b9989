import type { NodeFit } from '../control/api.js';
import { fieldOf, parseConstraint } from './constraints.js';
import type { NodeInfo, ServiceSpec, Task } from './model.js';

const MiB = 2 ** 20;

/**
 * Why a service's task would or would not go on each node, as a pure function of what the
 * scheduler reads: the checks it makes, in its order (ready, active, runtime, the volume's node,
 * constraints, max per node, memory, CPU), the first that fails named per node with its fix.
 * What Swarm's UIs say in one line ("no suitable node"), said per node.
 */
export function nodeFits(service: ServiceSpec, nodes: NodeInfo[], tasks: Task[]): NodeFit[] {
  const running = tasks.filter((t) => t.desired === 'running' && t.nodeId);
  return [...nodes]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((node) => {
      const here = running.filter((t) => t.nodeId === node.id);
      const miss = failedCheck(service, node, here);
      return {
        node: node.id,
        hostname: node.hostname,
        fits: miss === undefined,
        ...miss,
      };
    });
}

function failedCheck(
  service: ServiceSpec,
  node: NodeInfo,
  here: Task[],
): { check: string; fix?: string } | undefined {
  if (node.status !== 'ready')
    return {
      check: `not ready (${node.status})`,
      fix: node.status === 'down' ? 'start its agent again, or mesh node rm it' : undefined,
    };
  if (node.availability === 'drain')
    return { check: 'drained', fix: `mesh node activate ${node.id}` };
  if (!node.runtimes.includes(service.runtime))
    return service.runtime === 'docker'
      ? { check: 'no Docker Engine', fix: 'start the Docker Engine there: its agent finds it' }
      : { check: `runs no ${service.runtime} tasks` };
  if (service.pinned && service.pinned.nodeId !== node.id)
    return {
      check: `its volume ${service.pinned.volume} is on node ${service.pinned.nodeId}`,
    };
  for (const text of service.constraints) {
    const c = parseConstraint(text);
    const value = fieldOf(node, c.field);
    if ((value === c.value) === c.equal) continue;
    const label = c.field.startsWith('node.labels.') && c.equal;
    return {
      check: `constraint ${text}: it has ${value === undefined ? 'none' : `"${value}"`}`,
      fix: label
        ? `mesh node label ${node.id} ${c.field.slice('node.labels.'.length)}=${c.value}`
        : undefined,
    };
  }
  const ofService = here.filter((t) => t.serviceId === service.id).length;
  if (service.maxReplicasPerNode !== undefined && ofService >= service.maxReplicasPerNode)
    return {
      check: `max_replicas_per_node ${service.maxReplicasPerNode} reached (${ofService} here)`,
    };
  const used = here.reduce(
    (sum, t) => ({
      cpus: sum.cpus + t.reservations.cpus,
      memoryBytes: sum.memoryBytes + t.reservations.memoryBytes,
    }),
    { cpus: 0, memoryBytes: 0 },
  );
  const need = service.reservations;
  const memoryShort = used.memoryBytes + need.memoryBytes - node.capacity.memoryBytes;
  if (memoryShort > 0)
    return {
      check: `memory short by ${Math.ceil(memoryShort / MiB)} MiB (${Math.floor((node.capacity.memoryBytes - used.memoryBytes) / MiB)} MiB free, ${Math.round(need.memoryBytes / MiB)} MiB reserved per task)`,
      fix: 'lower deploy.resources.reservations.memory, or make room',
    };
  const cpuShort = used.cpus + need.cpus - node.capacity.cpus;
  if (cpuShort > 1e-9)
    return {
      check: `CPU short by ${Math.round(cpuShort * 100) / 100} (${Math.round((node.capacity.cpus - used.cpus) * 100) / 100} free, ${need.cpus} reserved per task)`,
      fix: 'lower deploy.resources.reservations.cpus, or make room',
    };
  return undefined;
}

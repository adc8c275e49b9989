import { checkNode } from '../api/nodes.js';
import type { Check } from '../api/schema.js';
import { checkService, type ServiceRecord, serviceId } from '../api/services.js';
import { checkStack, type StackRecord } from '../api/stacks.js';
import { checkStatus, checkTask, type TaskRecord, type TaskStatus } from '../api/tasks.js';
import type { Kind } from './cluster-state.js';

const SHAPES: Record<Kind, Check> = {
  nodes: checkNode,
  stacks: checkStack,
  services: checkService,
  tasks: checkTask,
  statuses: checkStatus,
  // Nothing writes secrets yet; until their model exists, none is stored.
  secrets: (_value, path) => `${path}: secrets cannot be stored yet`,
};

/** What is wrong with a stored object on its own (its shape, and that its ID names it). */
export function checkObject(kind: Kind, id: string, value: unknown): string | undefined {
  const path = `${kind}/${id}`;
  const shape = SHAPES[kind](value, path);
  if (shape) return shape;
  const named = (actual: string) =>
    actual === id ? undefined : `${path}: its ID must be ${actual}, from its value`;
  if (kind === 'stacks') return named((value as StackRecord).name);
  if (kind === 'services') return named(serviceId(value as ServiceRecord));
  if (kind === 'tasks') return named((value as TaskRecord).id);
  return undefined;
}

/**
 * What is wrong with putting this value, given the state as the command's earlier writes left it:
 * its shape, its ID, and what it refers to (a running task's service, a status's task and node).
 */
export function checkPut(
  kind: Kind,
  id: string,
  value: unknown,
  lookup: (kind: Kind, id: string) => unknown,
): string | undefined {
  const problem = checkObject(kind, id, value);
  if (problem) return problem;
  if (kind === 'tasks') {
    const task = value as TaskRecord;
    if (task.desired === 'running' && lookup('services', task.serviceId) === undefined)
      return `tasks/${id}: service ${task.serviceId} does not exist`;
  }
  if (kind === 'statuses') {
    const task = lookup('tasks', id) as TaskRecord | undefined;
    if (!task) return `statuses/${id}: no such task`;
    const { nodeId } = value as TaskStatus;
    if (task.nodeId !== nodeId)
      return `statuses/${id}: the task is assigned to ${task.nodeId ?? 'no node'}, not ${nodeId}`;
  }
  return undefined;
}

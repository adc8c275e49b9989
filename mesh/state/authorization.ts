import { isDeepStrictEqual } from 'node:util';
import type { NodeRecord } from '../api/nodes.js';
import type { TaskStatus } from '../api/tasks.js';
import { type ClusterState, parseCommand, type Write } from './cluster-state.js';

/**
 * Who may write what. The leader asks this of every proposal another node forwards, naming the
 * sender by its certificate (never by anything in the message):
 * - a voter (a "manager", as Swarm says) may write anything: operator actions run on voters;
 * - any other node (a "worker") may write only the statuses of tasks assigned to it, and the
 *   self-reported facts of its own node record (never its status, availability, operator labels
 *   or the certificates issued to it).
 * The leader's own proposals are its own to make.
 */
export function writeRefusal(
  sender: string,
  command: unknown,
  state: ClusterState,
  voters: readonly string[],
): string | undefined {
  if (voters.includes(sender)) return undefined;
  let writes: Write[];
  try {
    const parsed = parseCommand(command);
    writes = parsed.op === 'batch' ? parsed.writes : [parsed];
  } catch (error) {
    return (error as Error).message;
  }
  for (const write of writes) {
    const refusal = workerRefusal(sender, write, state);
    if (refusal) return refusal;
  }
  return undefined;
}

function workerRefusal(sender: string, write: Write, state: ClusterState): string | undefined {
  const what = `${write.op} ${write.kind}/${write.id}`;
  const worker = `node ${sender} is a worker (not a Raft voter)`;
  if (write.kind === 'statuses' && write.op === 'put') {
    const task = state.get('tasks', write.id)?.value;
    if (task?.nodeId === sender && (write.value as TaskStatus | null)?.nodeId === sender)
      return undefined;
    return `${worker}: it may report only the statuses of its own tasks, not ${what}`;
  }
  if (write.kind === 'nodes' && write.op === 'put' && write.id === sender) {
    const stored = state.get('nodes', sender)?.value;
    const value = write.value as Partial<NodeRecord> | null;
    const kept = (key: keyof NodeRecord) => isDeepStrictEqual(value?.[key], stored?.[key]);
    const own = [
      'status',
      'availability',
      'userLabels',
      'serial',
      'certificates',
      'workerOnly',
    ] as const;
    if (stored && own.every(kept)) return undefined;
    return `${worker}: of its own node record it may change only what it reports of itself, not its status, availability, labels set by an operator, the certificates issued to it or the token it joined with`;
  }
  return `${worker}: it may write only its own task statuses and node record, not ${what}; desired state changes on a manager`;
}

import type { TaskRecord } from '../../mesh/api/tasks.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import type { LogsResponse, RequestOf, Untrusted } from '../control/api.js';
import { InvalidError, NotFoundError } from '../errors.js';
import { HISTORY_PER_SLOT } from '../orchestrator/plan.js';
import type { LogPage } from '../runtime/runtime.js';
import type { Runtimes } from '../runtime/runtimes.js';
import type { Stacks } from './stacks.js';

const LOGS = 'logs/v1';
const MAX_TAIL = 10_000;

interface LogsQuery {
  taskId: string;
  cursor?: string;
  tail: number;
}

function parseQuery(body: unknown): LogsQuery {
  const q = body as Partial<LogsQuery> | null;
  if (
    typeof q?.taskId !== 'string' ||
    (q.cursor !== undefined && typeof q.cursor !== 'string') ||
    !Number.isSafeInteger(q.tail) ||
    (q.tail as number) < 0
  )
    throw new Error('logs request needs {taskId: string, cursor?: string, tail: integer}');
  return { taskId: q.taskId, cursor: q.cursor, tail: Math.min(q.tail as number, MAX_TAIL) };
}

/** `mesh logs`: each node serves its own tasks' output; the agent asked gathers them. */
export class ClusterLogs {
  constructor(
    private readonly nodeId: string,
    private readonly state: ClusterState,
    private readonly transport: Transport,
    private readonly runtimes: Runtimes,
    private readonly stacks: Stacks,
  ) {
    transport.handle(LOGS, (body) => {
      const q = parseQuery(body);
      return this.local(q);
    });
  }

  /** Output of one of this node's tasks, from the runtime that runs it. */
  private local({ taskId, cursor, tail }: LogsQuery): Promise<LogPage> {
    const task = this.state.get('tasks', taskId)?.value;
    const service = task && this.state.get('services', task.serviceId)?.value;
    const runtime = service && this.runtimes.get(service.runtime);
    return runtime
      ? runtime.logs(taskId, cursor, tail)
      : Promise.resolve({ lines: [], cursor: cursor ?? '0' });
  }

  async gather(query: Untrusted<RequestOf<'GET /v1/logs'>>): Promise<LogsResponse> {
    const tasks = this.tasksOf(query);
    const tail = Number(query.tail ?? 100);
    if (!Number.isSafeInteger(tail) || tail < 0)
      throw new InvalidError(`--tail must be a whole number, got "${String(query.tail)}"`);
    let cursors: Record<string, string>;
    try {
      cursors = JSON.parse(String(query.cursors ?? '{}')) as Record<string, string>;
    } catch (error) {
      throw new InvalidError(`cursors is not JSON: ${(error as Error).message}`);
    }
    const response: LogsResponse = { lines: [], cursors: {}, unreachable: [] };
    const pages = await Promise.allSettled(
      tasks.map((t) => this.page(t, { taskId: t.id, cursor: cursors[t.id], tail })),
    );
    pages.forEach((page, i) => {
      const task = tasks[i] as TaskRecord;
      if (page.status === 'rejected') {
        response.unreachable.push({ task: task.id, reason: (page.reason as Error).message });
        if (cursors[task.id]) response.cursors[task.id] = cursors[task.id] as string;
        return;
      }
      response.cursors[task.id] = page.value.cursor;
      for (const line of page.value.lines) response.lines.push({ task: task.id, line });
    });
    return response;
  }

  /**
   * The tasks asked for: one by its ID (a finished one of the history too, while its node keeps
   * it), or a service's tasks meant to run, by slot.
   */
  private tasksOf(query: Untrusted<RequestOf<'GET /v1/logs'>>): TaskRecord[] {
    if (typeof query.task === 'string' && query.task !== '') {
      const task = this.state.get('tasks', query.task)?.value;
      if (!task)
        throw new NotFoundError(
          `no task ${query.task} (a finished task is kept with the last ${HISTORY_PER_SLOT} of its slot); see "mesh ps -a"`,
        );
      if (task.nodeId === null) throw new InvalidError(`task ${task.id} never had a node`);
      return [task];
    }
    const service = this.stacks.resolveService(String(query.service ?? ''));
    return this.state
      .list('tasks')
      .map((t) => t.value)
      .filter((t) => t.serviceId === service && t.nodeId !== null && t.desired === 'running')
      .sort((a, b) => a.slot - b.slot);
  }

  private async page(task: TaskRecord, query: LogsQuery): Promise<LogPage> {
    if (task.nodeId === this.nodeId) return this.local(query);
    const node = this.state.get('nodes', task.nodeId as string)?.value;
    if (!node) throw new Error(`node ${task.nodeId} is not known`);
    const page = await this.transport.request(
      { address: node.address, nodeId: task.nodeId as string },
      LOGS,
      query,
      { timeoutMs: 5000 },
    );
    return page as LogPage;
  }
}

import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { FileRef, ValueKind } from '../../mesh/api/secrets.js';
import type { ServiceRecord } from '../../mesh/api/services.js';
import type { TaskRecord } from '../../mesh/api/tasks.js';
import { Counts } from '../../mesh/counts.js';
import type { RaftNode } from '../../mesh/raft/node.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { Transport } from '../../mesh/transport/transport.js';
import { askVoters } from '../cluster/ask-voters.js';
import type { TaskFile } from '../runtime/runtime.js';
import type { Keyring } from './keyring.js';

const run = promisify(execFile);
const OPEN = 'values.open';

/** Where this node keeps the files of its tasks' secrets and configs: a tmpfs of its own. */
export function filesRoot(nodeId: string): string {
  return join('/run/mesh', nodeId);
}

interface OpenRequest {
  taskId: string;
  kind: ValueKind;
  source: string;
  version: number;
}

/**
 * Secrets and configs as files for this node's tasks: opened only for a task that uses them
 * (by a voter: this node, or another asked over the cluster's mTLS, which checks that the task
 * is the asker's and uses that version), written to a tmpfs that never reaches the disk, and
 * removed with the task.
 */
export class TaskFiles {
  private mounted: Promise<void> | undefined;
  /** Tasks given their secrets and configs, or not (a voter unreachable, a value gone). */
  readonly deliveries = new Counts<{ outcome: 'delivered' | 'failed' }>();

  constructor(
    private readonly options: {
      nodeId: string;
      state: ClusterState;
      raft: RaftNode;
      transport: Transport;
      keyring: Keyring;
      log: Logger;
      /** Tests put it elsewhere; by default filesRoot(nodeId). */
      root?: string;
    },
  ) {
    options.transport.handle(OPEN, (body, from) => this.serve(body as OpenRequest, from.nodeId));
  }

  private get root(): string {
    return this.options.root ?? filesRoot(this.options.nodeId);
  }

  /** Mounts the tmpfs once (or finds it mounted by an earlier run of this agent). */
  private ensureMounted(): Promise<void> {
    this.mounted ??= (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      const mounts = await readFile('/proc/self/mounts', 'utf8');
      if (
        mounts
          .split('\n')
          .some((line) => line.split(' ')[1] === this.root && line.includes(' tmpfs '))
      )
        return;
      try {
        await run('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', this.root]);
      } catch (error) {
        this.mounted = undefined;
        throw new Error(
          `secrets need a tmpfs at ${this.root} and mounting one failed (${(error as Error).message.trim()}): run the agent as root`,
        );
      }
    })();
    return this.mounted;
  }

  /** The task's secrets and configs as files, and where each goes in the container. */
  async prepare(task: TaskRecord, service: ServiceRecord): Promise<TaskFile[]> {
    const refs = (['secrets', 'configs'] as const).flatMap((kind) =>
      (service[kind] ?? []).map((ref) => ({ kind, ref })),
    );
    if (refs.length === 0) return [];
    try {
      const files = await this.write(task, refs);
      this.deliveries.add({ outcome: 'delivered' });
      return files;
    } catch (error) {
      this.deliveries.add({ outcome: 'failed' });
      throw error;
    }
  }

  private async write(
    task: TaskRecord,
    refs: Array<{ kind: ValueKind; ref: FileRef }>,
  ): Promise<TaskFile[]> {
    await this.ensureMounted();
    const files: TaskFile[] = [];
    for (const { kind, ref } of refs) {
      const plain = await this.plainOf(task, kind, ref);
      const dir = join(this.root, task.id, kind);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const path = join(dir, ref.source);
      await writeFile(path, plain, { mode: 0o600 });
      // After writing: the mode asked for, whatever the umask says.
      await chmod(path, ref.mode);
      await chown(path, Number(ref.uid) || 0, Number(ref.gid) || 0).catch((error: Error) =>
        this.options.log.warn(
          { task: task.id, file: ref.target, reason: error.message },
          'could not give a secret file its owner',
        ),
      );
      files.push({ source: path, target: ref.target });
    }
    return files;
  }

  /** This node leaves the cluster: its tasks are gone, and so goes the tmpfs. */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    await run('umount', [this.root]).catch((error: Error) =>
      this.options.log.warn({ root: this.root, reason: error.message }, 'could not unmount'),
    );
    await rm(this.root, { recursive: true, force: true });
    this.mounted = undefined;
  }

  /** Removes a task's files (it stopped, or left this node). */
  async release(taskId: string): Promise<void> {
    await rm(join(this.root, taskId), { recursive: true, force: true });
  }

  private async plainOf(task: TaskRecord, kind: ValueKind, ref: FileRef): Promise<Buffer> {
    const request: OpenRequest = {
      taskId: task.id,
      kind,
      source: ref.source,
      version: ref.version,
    };
    const { raft, nodeId } = this.options;
    if (raft.membership.voters.includes(nodeId)) return this.openFor(request, nodeId);
    const { data } = await askVoters<{ data: string }>(
      this.options,
      OPEN,
      request,
      `opened ${kind}/${ref.source}`,
    );
    return Buffer.from(data, 'base64');
  }

  private async serve(request: OpenRequest, asker: string): Promise<{ data: string }> {
    return { data: (await this.openFor(request, asker)).toString('base64') };
  }

  /** Opens a value for a task, once sure the task is the asker's and uses that version. */
  private async openFor(
    { taskId, kind, source, version }: OpenRequest,
    asker: string,
  ): Promise<Buffer> {
    const { state, keyring, log } = this.options;
    const task = state.get('tasks', String(taskId))?.value;
    const service = task && state.get('services', task.serviceId)?.value;
    const uses =
      (kind === 'secrets' || kind === 'configs') &&
      (service?.[kind] ?? []).some((r) => r.source === source && r.version === version);
    if (!task || task.nodeId !== asker || task.desired !== 'running' || !uses)
      throw new Error(
        `task ${taskId} of node ${asker} does not use ${kind}/${source} version ${version}`,
      );
    const sealed = state
      .get(kind, source)
      ?.value.versions.find((v) => v.version === version)?.sealed;
    if (!sealed) throw new Error(`${kind}/${source} has no version ${version}`);
    if (asker !== this.options.nodeId)
      log.info({ task: taskId, asker, value: `${kind}/${source}` }, 'opened a value for a task');
    return keyring.open(sealed);
  }
}

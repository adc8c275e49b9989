import {
  normalRegistryHost,
  type RegistryAuth,
  type RegistryLogin,
  registryHost,
  serverAddress,
} from '../../mesh/api/registries.js';
import { definitionFor, type ServiceRecord, serviceId } from '../../mesh/api/services.js';
import type { TaskRecord } from '../../mesh/api/tasks.js';
import type { ClusterState } from '../../mesh/state/cluster-state.js';
import type { RegistryRow, Untrusted } from '../control/api.js';
import { InvalidError, NotFoundError } from '../errors.js';
import { askVoters, type SealedStoreParts } from './ask-voters.js';
import type { StateAccess } from './state-access.js';

const OPEN = 'registries.open';

export interface OpenRequest {
  taskId: string;
  host: string;
}

/**
 * `mesh registry login|logout|ls`: the logins Docker pulls private images with, as `docker stack
 * deploy --with-registry-auth` passes them, without the flag. A login is checked with the registry
 * before it is stored (through this node's engine, as `docker login` checks), and its password is
 * stored sealed as secrets are. A voter opens it only for a node about to start a task whose image
 * comes from that registry (asked over mTLS, named by the asker's certificate): no other node
 * ever holds it, and listings never show it.
 */
export class RegistryLogins {
  constructor(
    private readonly options: SealedStoreParts & {
      /** Asks the registry whether it takes a login; undefined: this node has no engine to ask. */
      checkLogin: () => ((auth: RegistryAuth) => Promise<void>) | undefined;
    },
  ) {
    options.transport.handle(OPEN, (body, from) => this.serve(body as OpenRequest, from.nodeId));
  }

  private get access(): StateAccess {
    return this.options.access;
  }

  async login(
    request: Untrusted<{ host: string; username: string; password: string }>,
  ): Promise<RegistryRow & { checked: boolean }> {
    this.access.requireManager();
    const given = String(request.host ?? '');
    const host = normalRegistryHost(given);
    if (!host)
      throw new InvalidError(
        `"${given}" is not a registry host: a name or address, with its port if it has one (registry.example.com, 127.0.0.1:5000)`,
      );
    const username = String(request.username ?? '');
    const password = String(request.password ?? '');
    if (!username || !password) throw new InvalidError('a login needs a username and a password');
    const check = this.options.checkLogin();
    if (check) {
      try {
        await check({ username, password, serveraddress: serverAddress(host) });
      } catch (error) {
        throw new InvalidError(
          `${host} did not take the login of ${username}, nothing stored: ${(error as Error).message}`,
        );
      }
    }
    const login: RegistryLogin = {
      host,
      username,
      sealedPassword: await this.options.keyring.seal(Buffer.from(password)),
      addedAt: new Date().toISOString(),
    };
    await this.access.writeConditionally(() => [
      { op: 'put', kind: 'registries', id: host, value: login },
    ]);
    this.options.log.info({ host, username, checked: Boolean(check) }, 'registry login stored');
    return { ...this.rowOf(login), checked: Boolean(check) };
  }

  list(): RegistryRow[] {
    return this.access.state
      .list('registries')
      .map((r) => this.rowOf(r.value))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  async logout(given: unknown): Promise<{ host: string }> {
    const host = normalRegistryHost(String(given ?? '')) ?? String(given);
    if (!this.access.state.get('registries', host))
      throw new NotFoundError(`no login for ${host}; see "mesh registry ls"`);
    await this.access.writeConditionally(() =>
      this.access.state.get('registries', host)
        ? [{ op: 'delete', kind: 'registries', id: host }]
        : [],
    );
    return { host };
  }

  /**
   * The login to pull a task's image with, when one is stored for its registry: opened here on a
   * voter, else by a voter asked for it.
   */
  async authFor(task: TaskRecord, service: ServiceRecord): Promise<RegistryAuth | undefined> {
    const host = registryHost(service.image);
    if (!this.access.state.get('registries', host)) return undefined;
    const { raft, nodeId, transport } = this.options;
    const request: OpenRequest = { taskId: task.id, host };
    if (raft.membership.voters.includes(nodeId)) return this.openFor(request, nodeId);
    return askVoters<RegistryAuth>(
      { raft, state: this.access.state, transport },
      OPEN,
      request,
      `opened the login for ${host}`,
    );
  }

  private async serve(request: OpenRequest, asker: string): Promise<RegistryAuth> {
    const auth = await this.openFor(request, asker);
    this.options.log.info(
      { task: request.taskId, asker, host: request.host },
      'opened a registry login for a task',
    );
    return auth;
  }

  /** Opens a login for a node, once sure the task is the node's and its image is from there. */
  private async openFor(request: OpenRequest, asker: string): Promise<RegistryAuth> {
    const { state } = this.access;
    const refusal = loginRefusal(state, request, asker);
    if (refusal) throw new Error(refusal);
    const login = state.get('registries', request.host)?.value;
    if (!login) throw new NotFoundError(`no login for ${request.host}`);
    const password = (await this.options.keyring.open(login.sealedPassword)).toString();
    return { username: login.username, password, serveraddress: serverAddress(login.host) };
  }

  /** A login as listed: never its password; the services whose images come from there. */
  private rowOf({ host, username, addedAt }: RegistryLogin): RegistryRow {
    const services = this.access.state
      .list('services')
      .filter((s) => registryHost(s.value.image) === host)
      .map((s) => serviceId(s.value))
      .sort();
    return { host, username, addedAt, services };
  }
}

/**
 * Why a node may not have a registry's login for a task: unless the task is assigned to it, is
 * to run, and the definition it runs pulls its image from that registry.
 */
export function loginRefusal(
  state: ClusterState,
  { taskId, host }: OpenRequest,
  asker: string,
): string | undefined {
  const task = state.get('tasks', String(taskId))?.value;
  const current = task && state.get('services', task.serviceId)?.value;
  const definition = current && definitionFor(task, current);
  if (!task || task.nodeId !== asker || task.desired !== 'running')
    return `task ${String(taskId)} is not one node ${asker} is to run`;
  if (!definition || registryHost(definition.image) !== host)
    return `task ${taskId} of node ${asker} pulls nothing from ${String(host)}`;
  return undefined;
}

import { isDeepStrictEqual } from 'node:util';
import { serviceAddressCount } from '../../mesh/api/network.js';
import type { NodeRecord } from '../../mesh/api/nodes.js';
import {
  checkDefinition,
  definitionOf,
  rolledBack,
  type ServiceDefinition,
  type ServiceRecord,
  serviceId,
  updatedRecord,
} from '../../mesh/api/services.js';
import { isValidName, type StackRecord } from '../../mesh/api/stacks.js';
import type { TaskStatus } from '../../mesh/api/tasks.js';
import type { ClusterState, StoredObject, Write } from '../../mesh/state/cluster-state.js';
import { hostOf } from '../../mesh/transport/address.js';
import { declaredPorts } from '../../proxy/routing-table.js';
import type {
  DeployRequest,
  DeployResponse,
  PlacementResponse,
  RequestOf,
  ServiceDetail,
  ServiceRow,
  ServiceUpdateRequest,
  ServiceUpdateResponse,
  StackRow,
  TaskRow,
  Untrusted,
  VolumeRow,
} from '../control/api.js';
import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import { viewOf } from '../orchestrator/orchestrator.js';
import { fitsOf } from '../orchestrator/plan.js';
import { ConstraintError, parseConstraint, satisfies } from '../scheduler/constraints.js';
import { nodeInfoOf } from '../scheduler/model.js';
import type { StoredValues } from '../secrets/values.js';
import type { StateAccess } from './state-access.js';

function checkRequest(body: unknown): DeployRequest {
  const request = body as DeployRequest;
  if (!isValidName(request?.stack))
    throw new InvalidError(
      `stack name "${String(request?.stack)}" must be lowercase letters, digits, - and _`,
    );
  if (!Array.isArray(request.services) || request.services.length === 0)
    throw new InvalidError(`stack ${request.stack} declares no services`);
  request.services.forEach((service, i) => {
    if (!isValidName(service?.name))
      throw new InvalidError(`service name "${String(service?.name)}" is not valid`);
    if (service.stack !== request.stack)
      throw new InvalidError(`service ${service.name} names stack ${service.stack}`);
    // The checks a stored service passes, before anything is planned: a malformed request is
    // refused naming the key, never met later as a TypeError or a store refusal. The versions
    // of its secrets and configs are the agent's to fill in.
    const problem = checkDefinition(
      {
        ...service,
        secrets: service.secrets?.map((ref) => ({ ...ref, version: 1 })),
        configs: service.configs?.map((ref) => ({ ...ref, version: 1 })),
      },
      `services[${i}]`,
    );
    if (problem) throw new InvalidError(`the deploy request is malformed: ${problem}`);
  });
  checkPull(request.pull);
  return request;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkUpdate(body: unknown): ServiceUpdateRequest {
  const request = body as ServiceUpdateRequest;
  if (typeof request?.service !== 'string' || request.service === '')
    throw new InvalidError('service update needs a service');
  const { image, envAdd, envRm, replicas, pull } = request;
  if (image !== undefined && (typeof image !== 'string' || image.trim() === ''))
    throw new InvalidError('--image needs an image reference');
  for (const name of [...Object.keys(envAdd ?? {}), ...(envRm ?? [])])
    if (!ENV_NAME.test(name)) throw new InvalidError(`"${name}" is not a variable name`);
  if (replicas !== undefined && (!Number.isSafeInteger(replicas) || replicas < 0))
    throw new InvalidError(`replicas must be a whole number >= 0, got ${String(replicas)}`);
  checkPull(pull);
  return request;
}

function checkPull(pull: unknown): void {
  if (pull !== undefined && !['always', 'missing', 'never'].includes(pull as string))
    throw new InvalidError(`--pull is always, missing or never, not "${String(pull)}"`);
}

/** The definition with an update's changes; --force raises forceUpdate, so the template differs. */
function changedDefinition(
  definition: ServiceDefinition,
  request: ServiceUpdateRequest,
): ServiceDefinition {
  const env = { ...definition.env, ...request.envAdd };
  for (const name of request.envRm ?? []) delete env[name];
  const next: ServiceDefinition = {
    ...definition,
    env,
    ...(request.image === undefined ? {} : { image: request.image }),
    ...(request.replicas === undefined ? {} : { replicas: request.replicas }),
    ...(request.force ? { forceUpdate: (definition.forceUpdate ?? 0) + 1 } : {}),
  };
  // missing is the default: kept as absent, so that it compares equal to a file that omits it.
  if (request.pull === 'missing') delete next.pull;
  else if (request.pull) next.pull = request.pull;
  return next;
}

/** Stacks and services as the control API reads and writes them. */
/**
 * An autoscaled service's count is its autoscaler's: a count set by hand would last until the next
 * decision, a silent fight. The bounds are what an operator sets, in the stack file.
 */
function refuseScalingByHand(service: ServiceRecord): void {
  const { autoscale } = service;
  if (autoscale)
    throw new ConflictError(
      `service ${serviceId(service)} is autoscaled between ${autoscale.min} and ${autoscale.max} replicas: change min and max under x-mesh.autoscale in its stack file and deploy it, or take x-mesh.autoscale out to set the count by hand`,
    );
}

export class Stacks {
  constructor(
    private readonly access: StateAccess,
    private readonly values?: StoredValues,
  ) {}

  private get state(): ClusterState {
    return this.access.state;
  }

  async deploy(body: unknown): Promise<DeployResponse> {
    const request = checkRequest(body);
    const unplaceable = this.unplaceable(request.services);
    if (request.strict && unplaceable[0]) throw new InvalidError(unplaceable[0].reason);
    this.checkPorts(request);
    this.checkHosts(request);
    this.checkAddresses(request);
    const response: DeployResponse = { stack: request.stack, services: [], unplaceable };
    // Values are sealed first (sealing waits on the keyring; a write's plan may not).
    if (!request.dryRun) this.access.requireManager();
    // A dry run seals nothing (sealing may create the cluster's data key): a value the file
    // brings counts as there.
    const brought = (request.values ?? []).filter((v) => v.data !== undefined);
    const values = request.dryRun
      ? []
      : await Promise.all(
          brought.map((v) => this.requireValues().sealNext(v.kind, v.name, v.data)),
        );
    const assumed = new Set(request.dryRun ? brought.map((v) => `${v.kind}/${v.name}`) : []);
    const plan = () => {
      response.services = [];
      const now = new Date().toISOString();
      const writes: Write[] = [];
      for (const sealed of values) {
        const write = this.values?.storeWrite(sealed);
        if (write) writes.push(write);
      }
      for (const declared of request.services) {
        const id = serviceId(declared);
        const stored = this.state.get('services', id);
        // A forced update is not undone by the next deploy of the same file; --pull always
        // forces one, so that running tasks pull their tag again.
        const forced =
          request.pull === 'always' && stored
            ? (stored.value.forceUpdate ?? 0) + 1
            : stored?.value.forceUpdate;
        const definition: ServiceDefinition = {
          ...this.withVersions(declared, writes, assumed),
          ...(forced ? { forceUpdate: forced } : {}),
        };
        if (request.pull === 'missing') delete definition.pull;
        else if (request.pull) definition.pull = request.pull;
        const { record, change } = updatedRecord(stored?.value, definition, now);
        response.services.push({ id, version: record.version, change });
        if (change === 'unchanged') continue;
        writes.push({
          op: 'put',
          kind: 'services',
          id,
          value: record,
          ifVersion: stored?.version ?? 0,
        });
      }
      const declared = new Set(request.services.map((s) => s.name));
      const stack = this.state.get('stacks', request.stack);
      const kept = (stack?.value.services ?? []).filter((name) => !declared.has(name));
      for (const name of request.prune ? kept : []) {
        const id = `${request.stack}.${name}`;
        writes.push({ op: 'delete', kind: 'services', id });
        response.services.push({ id, version: 0, change: 'removed' });
      }
      const services = [...declared, ...(request.prune ? [] : kept)].sort();
      const value: StackRecord = { name: request.stack, services, deployedAt: now };
      if (writes.length > 0 || !isDeepStrictEqual(stack?.value.services, services))
        writes.push({
          op: 'put',
          kind: 'stacks',
          id: request.stack,
          value,
          ifVersion: stack?.version ?? 0,
        });
      return writes;
    };
    if (request.dryRun) plan();
    else await this.access.writeConditionally(plan);
    return response;
  }

  private requireValues(): StoredValues {
    if (!this.values) throw new InvalidError('secrets and configs are not available on this node');
    return this.values;
  }

  /** The definition with each secret and config reference at the value's latest version. */
  private withVersions(
    definition: ServiceDefinition,
    writes: Write[],
    assumed: ReadonlySet<string>,
  ): ServiceDefinition {
    const resolved = { ...definition };
    for (const kind of ['secrets', 'configs'] as const) {
      if (!definition[kind]) continue;
      resolved[kind] = definition[kind].map((ref) => {
        const version =
          this.values?.latestVersion(kind, ref.source, writes) ??
          (assumed.has(`${kind}/${ref.source}`) ? 1 : undefined);
        if (version === undefined)
          throw new InvalidError(
            `service ${definition.name}: ${kind === 'secrets' ? 'secret' : 'config'} ${ref.source} does not exist: create it with "mesh ${kind === 'secrets' ? 'secret' : 'config'} create ${ref.source}"`,
          );
        return { ...ref, version };
      });
    }
    return resolved;
  }

  async scale(name: string, replicas: unknown): Promise<{ service: string; replicas: number }> {
    if (!Number.isSafeInteger(replicas) || (replicas as number) < 0)
      throw new InvalidError(`replicas must be a whole number >= 0, got ${String(replicas)}`);
    const id = this.resolveService(name);
    await this.access.writeConditionally(() => {
      const stored = this.state.get('services', id);
      if (!stored) throw new NotFoundError(`service ${id} was removed meanwhile`);
      if (stored.value.mode === 'global')
        throw new InvalidError(`service ${id} is global: one task per node, nothing to scale`);
      refuseScalingByHand(stored.value);
      const value = { ...stored.value, replicas: replicas as number };
      return [{ op: 'put', kind: 'services', id, value, ifVersion: stored.version }];
    });
    return { service: id, replicas: replicas as number };
  }

  /**
   * `mesh service update`: the stored definition with the request's changes, a new version when
   * the task template changed (or --force), rolled out as a deploy's is.
   */
  async update(body: unknown): Promise<ServiceUpdateResponse> {
    const request = checkUpdate(body);
    const id = this.resolveService(request.service);
    let response: ServiceUpdateResponse = { id, version: 0, change: 'unchanged' };
    await this.access.writeConditionally(() => {
      const stored = this.state.get('services', id);
      if (!stored) throw new NotFoundError(`service ${id} was removed meanwhile`);
      if (request.replicas !== undefined && stored.value.mode === 'global')
        throw new InvalidError(`service ${id} is global: one task per node, no replicas to set`);
      if (request.replicas !== undefined) refuseScalingByHand(stored.value);
      const { record, change } = updatedRecord(
        stored.value,
        changedDefinition(definitionOf(stored.value), request),
        new Date().toISOString(),
      );
      response = { id, version: record.version, change };
      if (change === 'unchanged') return [];
      return [{ op: 'put', kind: 'services', id, value: record, ifVersion: stored.version }];
    });
    return response;
  }

  /** A service as the cluster holds it, by ID or name, with its autoscaler's record. */
  service(name: string): ServiceDetail {
    const id = this.resolveService(name);
    const stored = this.state.get('services', id);
    if (!stored) throw new NotFoundError(`no service ${name}; see "mesh ls"`);
    return { ...stored.value, autoscaling: this.state.get('autoscaling', id)?.value ?? null };
  }

  /** Where the service's tasks may go, per node, with the checks a node fails and the fixes. */
  placement(name: string, voters: readonly string[]): PlacementResponse {
    const id = this.resolveService(name);
    const view = viewOf(this.state, voters);
    const nodes = fitsOf(view, id);
    if (!nodes) throw new NotFoundError(`no service ${name}; see "mesh ls"`);
    const pending = view.tasks
      .map((t) => t.value)
      .filter((t) => t.serviceId === id && t.desired === 'running' && t.nodeId === null)
      .map((t) => ({ task: t.id, reason: t.reason ?? 'waiting for a node' }));
    return { service: id, pending, nodes };
  }

  /** Goes back to the definition before the last update, rolled out per rollback_config. */
  async rollback(name: string): Promise<{ service: string; version: number }> {
    const id = this.resolveService(name);
    let version = 0;
    await this.access.writeConditionally(() => {
      const stored = this.state.get('services', id);
      if (!stored) throw new NotFoundError(`service ${id} was removed meanwhile`);
      if (!stored.value.previous)
        throw new ConflictError(`service ${id} has no earlier version to roll back to`);
      const value = rolledBack(stored.value, new Date().toISOString());
      version = value.version;
      return [{ op: 'put', kind: 'services', id, value, ifVersion: stored.version }];
    });
    return { service: id, version };
  }

  async remove(name: string): Promise<{ stack: string; services: string[] }> {
    const stack = this.state.get('stacks', name);
    if (!stack) throw new NotFoundError(`no stack named "${name}"; see "mesh ls"`);
    const services = stack.value.services.map((s) => `${name}.${s}`);
    await this.access.writeConditionally(() => [
      { op: 'delete', kind: 'stacks', id: name },
      ...services.map((id): Write => ({ op: 'delete', kind: 'services', id })),
    ]);
    return { stack: name, services };
  }

  list(): StackRow[] {
    const tasks = this.state.list('tasks').map((t) => t.value);
    const nodes = this.state.list('nodes');
    const damaged = new Map(this.state.damaged('services').map((d) => [d.id, d.reason]));
    return this.state
      .list('stacks')
      .map(({ value: stack }) => ({
        name: stack.name,
        services: stack.services.flatMap((name): StackRow['services'] => {
          const id = `${stack.name}.${name}`;
          const service = this.state.get('services', id)?.value;
          const reason = damaged.get(id);
          if (reason) return [{ id, damaged: reason }];
          if (!service) return [];
          const own = tasks.filter((t) => t.serviceId === id && t.desired === 'running');
          const autoscaling = this.state.get('autoscaling', id)?.value;
          const current = own.filter((t) => t.serviceVersion === service.version);
          const running = current
            .map((t) => this.status(t.id))
            .filter((s) => s?.state === 'running');
          const failing = current
            .map((t) => ({ id: t.id, status: this.status(t.id) }))
            .find(({ status }) => status !== undefined && cannotStart(status));
          return [
            {
              id,
              mode: service.mode,
              desired: service.mode === 'global' ? own.length : service.replicas,
              running: running.length,
              ready: running.filter((s) => s?.ready).length,
              image: shownImage(service),
              runtime: service.runtime,
              ports: service.ports,
              version: service.version,
              address: this.state.get('addresses', id)?.value.address ?? null,
              dnsName: `${name}.${stack.name}.mesh`,
              unserved: unservedPorts(service, nodes),
              servedNowhere: portsWhere(service, nodes, 'all taken'),
              portsUnreported: portsWhere(service, nodes, 'some silent'),
              ingressSilent: ingressSilent(service, nodes),
              rollout: service.rollout ?? null,
              rollingBack: service.rollingBack === true,
              failing: failing
                ? `${failing.id} ${failing.status?.state}: ${failing.status?.reason ?? 'no reason given'}`
                : null,
              autoscale: service.autoscale
                ? {
                    min: service.autoscale.min,
                    max: service.autoscale.max,
                    targets: service.autoscale.targets,
                    ...(autoscaling && { observed: autoscaling.observed }),
                  }
                : null,
            },
          ];
        }),
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Tasks of a stack (?stack=), a service (?service=), or either by name (?name=), or all. */
  tasks(query: Untrusted<RequestOf<'GET /v1/tasks'>>): TaskRow[] {
    const name = typeof query.name === 'string' ? query.name : undefined;
    const isStack = name !== undefined && this.state.get('stacks', name) !== undefined;
    const stack = isStack ? name : (query.stack as string | undefined);
    const service =
      name && !isStack ? this.resolveService(name) : (query.service as string | undefined);
    const nodes = new Map(this.state.list('nodes').map((n) => [n.id, n.value]));
    return this.state
      .list('tasks')
      .map((t) => t.value)
      .filter(
        (t) =>
          (!stack || t.serviceId.startsWith(`${stack}.`)) && (!service || t.serviceId === service),
      )
      .map((t): TaskRow => {
        const status = this.status(t.id);
        const service = this.state.get('services', t.serviceId)?.value;
        const current = service?.version;
        return {
          id: t.id,
          service: t.serviceId,
          slot: t.slot,
          node: t.nodeId,
          nodeAddress: t.nodeId ? (nodes.get(t.nodeId)?.address ?? null) : null,
          desired: t.desired,
          state: status?.state ?? (t.nodeId ? 'assigned' : 'pending'),
          reason: status?.reason ?? t.reason ?? null,
          since: status?.since ?? t.createdAt ?? null,
          restarts: status?.restarts ?? 0,
          serviceVersion: t.serviceVersion,
          currentVersion: current ?? null,
          ready: status?.state === 'running' ? status.ready === true : null,
          probe: status?.probe ?? null,
          pinnedBy: this.pinOf(t.serviceId),
          ports: status?.ports ?? [],
          image: service ? imageOf(service, t.serviceVersion) : null,
          exitCode: status?.exitCode ?? null,
        };
      })
      .concat(name || stack || service ? [] : this.damagedTasks())
      .sort((a, b) => a.service.localeCompare(b.service) || a.slot - b.slot);
  }

  /** Tasks a snapshot held in a shape no check accepts: listed so that nobody wonders where. */
  private damagedTasks(): TaskRow[] {
    return this.state.damaged('tasks').map((d) => ({
      id: d.id,
      service: '',
      slot: 0,
      node: null,
      nodeAddress: null,
      desired: 'running',
      state: 'damaged',
      reason: d.reason,
      since: null,
      restarts: 0,
      serviceVersion: 0,
      image: null,
      exitCode: null,
      currentVersion: null,
      ready: null,
      probe: null,
      pinnedBy: null,
      ports: [],
    }));
  }

  /** The pinning volume that keeps a service on its node, in words. */
  private pinOf(id: string): TaskRow['pinnedBy'] {
    const service = this.state.get('services', id)?.value;
    for (const volume of service?.namedVolumes ?? []) {
      const record = volume.pinned && this.state.get('volumes', volume.name);
      if (record) return { volume: volume.name, node: record.value.nodeId };
    }
    return null;
  }

  volumes(): VolumeRow[] {
    const services = this.state.list('services');
    return this.state.list('volumes').map(({ value }) => {
      const node = this.state.get('nodes', value.nodeId)?.value;
      return {
        name: value.name,
        node: value.nodeId,
        nodeAddress: node?.address ?? null,
        nodeStatus: node?.status ?? 'gone',
        services: services
          .filter((s) => (s.value.namedVolumes ?? []).some((v) => v.name === value.name))
          .map((s) => s.id),
        pinnedAt: value.pinnedAt,
      };
    });
  }

  /** `web` when only one stack has it, or `shop.web`. */
  resolveService(name: string): string {
    if (this.state.get('services', name)) return name;
    const matches = this.state
      .list('services')
      .filter((s) => s.value.name === name)
      .map((s) => s.id);
    if (matches.length === 1) return matches[0] as string;
    if (matches.length > 1)
      throw new InvalidError(`"${name}" is in several stacks: say which (${matches.join(', ')})`);
    throw new NotFoundError(`no service named "${name}"; see "mesh ls"`);
  }

  private status(taskId: string): TaskStatus | undefined {
    return this.state.get('statuses', taskId)?.value;
  }

  /**
   * The services whose constraints no node of the cluster satisfies today. As in Swarm, they are
   * deployed all the same and wait, pending, until a node fits (a label added, a node joining);
   * the deploy says so, and a strict one is refused. A constraint that cannot be read is refused.
   */
  private unplaceable(services: ServiceDefinition[]): DeployResponse['unplaceable'] {
    const records = this.state.list('nodes');
    const nodes = records
      .filter((n) => !['left', 'removed', 'joining'].includes(n.value.status))
      .map((node) => nodeInfoOf(node, this.access.voters));
    // Admitted but not yet seen by gossip: its labels are not known, so it may be the one.
    const joining = records.filter((n) => n.value.status === 'joining').map((n) => n.id);
    const wait =
      joining.length > 0
        ? `; node ${joining.join(', ')} is still joining, its labels not known yet`
        : '';
    const found: DeployResponse['unplaceable'] = [];
    for (const service of services) {
      const constraints = service.placement?.constraints ?? [];
      try {
        for (const c of constraints) parseConstraint(c);
      } catch (error) {
        if (!(error instanceof ConstraintError)) throw error;
        throw new InvalidError(`service ${service.name}: ${error.message}`);
      }
      if (constraints.length > 0 && !nodes.some((n) => satisfies(n, constraints)))
        found.push({
          id: serviceId(service),
          reason: `service ${service.name}: no node satisfies ${constraints.join(' and ')} (${nodes
            .map((n) => `${n.id} ${JSON.stringify(n.labels)}`)
            .join('; ')})${wait}`,
        });
    }
    return found;
  }

  /**
   * Every service gets an address from the cluster's service range: a deploy that would leave one
   * without (so nothing reaches it by name) is refused, saying how many the range holds.
   */
  private checkAddresses(request: DeployRequest): void {
    const range = this.state.setting('network')?.value.serviceRange;
    if (!range) return; // written by the first leader; until then no service has an address
    const ids = new Set(this.state.list('services').map((s) => s.id));
    const declared = new Set(request.services.map((s) => s.name));
    for (const name of declared) ids.add(`${request.stack}.${name}`);
    if (request.prune)
      for (const name of this.state.get('stacks', request.stack)?.value.services ?? [])
        if (!declared.has(name)) ids.delete(`${request.stack}.${name}`);
    const capacity = serviceAddressCount(range);
    if (ids.size > capacity)
      throw new InvalidError(
        `the cluster's service range ${range} holds ${capacity} service addresses, and this deploy would make ${ids.size} services: remove services or stacks first (the range is chosen at mesh init, --service-range)`,
      );
  }

  /** A host name of x-mesh routes belongs to one stack (its services may split it by path). */
  private checkHosts(request: DeployRequest): void {
    const owner = new Map<string, string>();
    for (const { value } of this.state.list('services'))
      if (value.stack !== request.stack)
        for (const route of value.routes ?? []) owner.set(route.host, value.stack);
    const paths = new Map<string, string>();
    for (const service of request.services)
      for (const route of service.routes ?? []) {
        const stack = owner.get(route.host);
        if (stack)
          throw new ConflictError(
            `service ${service.name}: host ${route.host} is already routed by stack ${stack} (stack ${request.stack} asks for it too)`,
          );
        const key = `${route.host}${route.path}`;
        const other = paths.get(key);
        if (other && other !== service.name)
          throw new InvalidError(
            `service ${service.name}: ${key} is already routed to service ${other}`,
          );
        paths.set(key, service.name);
      }
  }

  /** A published port belongs to one service in the whole cluster (the routing mesh serves it). */
  private checkPorts(request: DeployRequest): void {
    const owner = new Map<string, string>();
    for (const { value } of this.state.list('services')) {
      if (value.stack === request.stack) continue;
      for (const p of value.ports)
        if (p.published) owner.set(`${p.published}/${p.protocol}`, serviceId(value));
    }
    for (const service of request.services)
      for (const p of service.ports) {
        const key = `${p.published}/${p.protocol}`;
        const taken = p.published ? owner.get(key) : undefined;
        if (taken)
          throw new ConflictError(
            `service ${service.name}: port ${key} is already published by ${taken}`,
          );
        if (p.published) owner.set(key, serviceId(service));
      }
  }
}

/** What a listing shows as a service's image: a process service's command instead. */
function shownImage(definition: ServiceDefinition): string {
  return definition.runtime === 'process' ? (definition.command ?? []).join(' ') : definition.image;
}

/** The image a version of the service ran: the current one's, or the one before the last update. */
function imageOf(service: ServiceRecord, version: number): string | null {
  if (version === service.version) return shownImage(service);
  if (service.previous && version === service.previousVersion) return shownImage(service.previous);
  return null;
}

/**
 * The service's published ports (routing mesh) whose every ready node that should listen for
 * one (each node; the node its host IP names) says this of it: the ports that no node serves
 * (each reports it taken), or that some node has not taken up yet.
 */
function portsWhere(
  service: ServiceRecord,
  nodes: Array<StoredObject<NodeRecord>>,
  says: 'all taken' | 'some silent',
): number[] {
  const ready = nodes.filter((n) => n.value.status === 'ready');
  const ports = new Set<number>();
  for (const p of service.ports) {
    const port = p.published;
    if (port === undefined || p.mode === 'host') continue;
    const own = !p.hostIp || p.hostIp.startsWith('127.') || p.hostIp === '::1';
    const should = ready.filter((n) => own || hostOf(n.value.address) === p.hostIp);
    const taken = (n: StoredObject<NodeRecord>) =>
      (n.value.unserved ?? []).some((u) => u.port === port);
    const silent = (n: StoredObject<NodeRecord>) => !(n.value.published ?? []).includes(port);
    if (says === 'all taken' ? should.length > 0 && should.every(taken) : should.some(silent))
      ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

/**
 * The ready nodes whose HTTP ingress has not said it listens, for a service the ingress routes (a
 * declared TCP port, or routes): a node's ingress workers start with its first route, so one may
 * listen a moment after the service's replicas are ready.
 */
function ingressSilent(service: ServiceRecord, nodes: Array<StoredObject<NodeRecord>>): string[] {
  if (!isRouted(service)) return [];
  return nodes
    .filter((n) => n.value.status === 'ready' && n.value.ingress === undefined)
    .map((n) => n.id)
    .sort();
}

/** Restarts of a task that is not running, past which it is crash-looping. */
const CRASH_LOOP_RESTARTS = 3;

/** A task of the current version that failed, or keeps restarting without running. */
function cannotStart(status: TaskStatus): boolean {
  return (
    status.state === 'failed' ||
    (status.restarts >= CRASH_LOOP_RESTARTS && status.state !== 'running')
  );
}

/**
 * The service's published ports (ingress mode) that a node reports it cannot serve, and why; for
 * a service the HTTP ingress routes, also the ingress ports a node could not take.
 */
function unservedPorts(
  service: ServiceRecord,
  nodes: Array<StoredObject<NodeRecord>>,
): ServiceRow['unserved'] {
  const published = new Set(
    service.ports.flatMap((p) =>
      p.published !== undefined && p.mode !== 'host' ? [p.published] : [],
    ),
  );
  const routed = isRouted(service);
  return nodes.flatMap(({ id, value }) =>
    [
      ...(value.unserved ?? []).filter((u) => published.has(u.port)),
      ...(routed ? (value.ingressUnserved ?? []) : []).map((u) => ({
        port: u.port,
        reason: `HTTP ingress: ${u.reason}`,
      })),
    ].map((u) => ({ port: u.port, node: id, reason: u.reason })),
  );
}

/** Whether the HTTP ingress routes the service: a declared TCP port, or routes of its own. */
function isRouted(service: ServiceRecord): boolean {
  return declaredPorts(service).length > 0 || (service.routes?.length ?? 0) > 0;
}

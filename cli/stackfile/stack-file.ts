import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { networkKey } from '../../mesh/api/network.js';
import type { ValueKind } from '../../mesh/api/secrets.js';
import type {
  ContainerSettings,
  Healthcheck,
  HttpRouteSpec,
  NamedVolume,
  PortSpec,
  PullPolicy,
  ReadinessProbe,
  RestartPolicy,
  ServiceDefinition,
  UpdatePolicy,
} from '../../mesh/api/services.js';
import { isValidName } from '../../mesh/api/stacks.js';
import { autoscaleOf } from './autoscale.js';
import { CONTAINER_KEYS } from './container.js';
import { IGNORED_DEPLOY, IGNORED_SERVICE, IGNORED_TOP } from './keys.js';
import { checkSchema } from './schema.js';
import {
  type KeyPath,
  Located,
  MergedSource,
  type Problem,
  Source,
  StackFileError,
  type StackSource,
} from './source.js';
import {
  interpolate,
  parseBytes,
  parseDuration,
  splitCommand,
  type UnsetVariable,
} from './values.js';
import {
  type DeclaredValues,
  declaredValues,
  type FileValue,
  serviceRefs,
} from './values-of-file.js';
import { declaredVolumes, serviceVolumes } from './volumes.js';

export { StackFileError } from './source.js';

/** A key the file sets that mesh does not act on, and why. */
export interface Ignored {
  path: string;
  /** The file that sets it (one of several merged). */
  file: string;
  line: number;
  reason: string;
}

export interface StackFile {
  stack: string;
  services: ServiceDefinition[];
  /** The secrets and configs it declares, to be stored (or found, external ones) at deploy. */
  values: FileValue[];
  ignored: Ignored[];
  /** Variables the file uses that are not set (an empty string was used), where each is used. */
  unset: Ignored[];
}

type Raw = Record<string, unknown>;

/** Swarm's defaults, but start-first and rolling back by themselves (a rollback pauses when it fails). */
const DEFAULT_UPDATE: UpdatePolicy = {
  parallelism: 1,
  delayMs: 0,
  order: 'start-first',
  failureAction: 'rollback',
  monitorMs: 5000,
  maxFailureRatio: 0,
};
const DEFAULT_ROLLBACK: UpdatePolicy = { ...DEFAULT_UPDATE, failureAction: 'pause' };
const DEFAULT_RESTART: RestartPolicy = {
  condition: 'any',
  delayMs: 5000,
  maxAttempts: 0,
  windowMs: 0,
};

/**
 * Reads a compose file as a stack (several: merged in order, as Compose merges them): YAML with
 * positions, ${VAR} interpolation, the Compose JSON schema, then meaning (durations, ports,
 * constraints, references between services). Every problem names file:line:column and the key
 * path; nothing is sent anywhere before all is well.
 */
export function readStackFile(
  files: string | string[],
  stackName: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): StackFile {
  const all = typeof files === 'string' ? [files] : files;
  const source: StackSource =
    all.length === 1 ? Source.read(all[0] as string) : new MergedSource(all.map(Source.read));
  const file = source.file;
  let data: Raw;
  const unsetVariables: UnsetVariable[] = [];
  try {
    data = interpolate(source.data ?? {}, env, unsetVariables) as Raw;
  } catch (error) {
    const path = (error as { path?: KeyPath }).path ?? [];
    throw new StackFileError([source.problem(path, (error as Error).message)]);
  }
  if (typeof data !== 'object' || Array.isArray(data))
    throw new StackFileError([source.problem([], 'a compose file is a mapping with "services"')]);
  const ignored: Ignored[] = [];
  const ignore = (path: KeyPath, reason: string) => {
    const at = source.locate(path, true);
    ignored.push({ path: path.join('.'), file: at.file, line: at.line, reason });
  };
  const unset = unsetVariables.map(({ path, name }): Ignored => {
    const at = source.locate(path, true);
    return {
      path: path.join('.'),
      file: at.file,
      line: at.line,
      reason: `${name} is not set: an empty string is used`,
    };
  });

  const schemaProblems = checkSchema(source, data);
  if (schemaProblems.length > 0) throw new StackFileError(schemaProblems);
  const services = (data.services ?? {}) as Record<string, Raw>;

  const stack = stackName ?? (typeof data.name === 'string' ? data.name : undefined);
  if (!stack)
    throw new StackFileError([
      source.problem([], 'no stack name: pass one (mesh deploy -c FILE STACK) or set "name:"'),
    ]);
  if (!isValidName(stack))
    throw new StackFileError([
      source.problem(
        stackName ? [] : ['name'],
        `stack name "${stack}" must be lowercase letters, digits, - and _`,
      ),
    ]);
  for (const key of Object.keys(data))
    if (IGNORED_TOP[key]) ignore([key], IGNORED_TOP[key] as string);
  if (Object.keys(services).length === 0)
    throw new StackFileError([source.problem(['services'], 'the file declares no services')]);

  const problems: Problem[] = [];
  const networks = networksOfFile(stack, (data.networks ?? {}) as Raw, ignore);
  const dir = dirname(resolve(file));
  const refuse = (error: Located) => problems.push(source.problem(error.path, error.message));
  const values = {
    secrets: declaredValues('secrets', data.secrets as Raw, stack, dir, env, ignore, refuse),
    configs: declaredValues('configs', data.configs as Raw, stack, dir, env, ignore, refuse),
  };
  const volumes = declaredVolumes(stack, data.volumes as Raw | undefined, ignore);
  const serviceKeys = new Map<string, string>();
  const context = { source, dir, ignore, problems, env, networks, values, volumes, serviceKeys };
  const definitions = Object.entries(services).flatMap(([key, raw]) => {
    const at: KeyPath = ['services', key];
    // The Compose schema allows capitals (`initContainer`); Swarm takes them and lower-cases the
    // name, as DNS does. Dots would split the service's ID.
    const name = key.toLowerCase();
    if (!isValidName(name)) {
      problems.push(
        source.problem(at, 'a service name is letters, digits, - and _ (no dots)', true),
      );
      return [];
    }
    const taken = serviceKeys.get(name);
    if (taken !== undefined) {
      problems.push(
        source.problem(at, `is the same name as service ${taken} (names are lower-cased)`, true),
      );
      return [];
    }
    serviceKeys.set(name, key);
    try {
      return [serviceOf(stack, key, raw ?? {}, context)];
    } catch (error) {
      if (!(error instanceof Located)) throw error;
      problems.push(source.problem(error.path, error.message));
      return [];
    }
  });
  checkReferences(definitions, Object.keys(services), context);
  if (problems.length > 0) throw new StackFileError(problems);
  return {
    stack,
    services: definitions,
    values: [...values.secrets.values.values(), ...values.configs.values.values()],
    ignored,
    unset,
  };
}

interface Context {
  source: StackSource;
  /** Each service's name (its key lower-cased, as Swarm names it in DNS) → its key in the file. */
  serviceKeys: Map<string, string>;
  dir: string;
  ignore: (path: KeyPath, reason: string) => void;
  problems: Problem[];
  env: NodeJS.ProcessEnv;
  /** The file's networks by the name its services use, each as its key. */
  networks: Map<string, string>;
  /** The file's secrets and configs by the key its services use. */
  values: Record<ValueKind, DeclaredValues>;
  /** The file's named volumes by the key its services use. */
  volumes: Map<string, NamedVolume>;
}

/**
 * The file's top-level networks as keys: `<stack>_<name>`, or for an external one its own name
 * (shared with other stacks). Settings that cannot apply to a per-node bridge are reported.
 */
function networksOfFile(
  stack: string,
  declared: Raw,
  ignore: (path: KeyPath, reason: string) => void,
): Map<string, string> {
  const keys = new Map<string, string>([['default', networkKey(stack, 'default', false)]]);
  for (const [name, raw] of Object.entries(declared)) {
    const spec = (raw ?? {}) as Raw;
    const external = spec.external === true || typeof spec.external === 'object';
    const own = typeof spec.name === 'string' ? spec.name : name;
    keys.set(name, networkKey(stack, own, external));
    for (const key of Object.keys(spec))
      if (!['external', 'name', 'labels'].includes(key))
        ignore(
          ['networks', name, key],
          'each node has a bridge per network, made by mesh; services reach each other by shared network',
        );
  }
  return keys;
}

/** Runs a value reader, turning its error into one located at `path`. */
function at<T>(path: KeyPath, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof Located) throw error;
    throw new Located(path, (error as Error).message);
  }
}

const X_MESH_KEYS = ['runtime', 'at_most_once', 'routes', 'readiness', 'autoscale'];

function serviceOf(stack: string, key: string, raw: Raw, context: Context): ServiceDefinition {
  const path: KeyPath = ['services', key];
  for (const key of Object.keys(raw))
    if (IGNORED_SERVICE[key]) context.ignore([...path, key], IGNORED_SERVICE[key] as string);
  const launch = launchOf(raw, path, context);
  const deploy = (raw.deploy ?? {}) as Raw;
  if (deploy.mode === 'replicated-job' || deploy.mode === 'global-job')
    throw new Located(
      [...path, 'deploy', 'mode'],
      `${deploy.mode} is not supported yet: run it as a service with restart_policy condition none`,
    );
  const definition = requiredSettings(stack, key.toLowerCase(), launch, raw, path, context);
  optionalSettings(definition, launch.mesh, raw, path, context);
  reportDeployKeys(deploy, [...path, 'deploy'], context);
  reportNestedKeys(raw, path, context);
  return definition;
}

/** How the service's tasks are started: the runtime, its x-mesh settings, command and entrypoint. */
function launchOf(raw: Raw, path: KeyPath, context: Context) {
  const mesh = (raw['x-mesh'] ?? {}) as Raw;
  const runtime = mesh.runtime ?? 'docker';
  if (runtime !== 'docker' && runtime !== 'process')
    throw new Located([...path, 'x-mesh', 'runtime'], 'must be docker or process');
  for (const key of Object.keys(mesh))
    if (!X_MESH_KEYS.includes(key))
      throw new Located(
        [...path, 'x-mesh', key],
        `unknown x-mesh setting (${X_MESH_KEYS.join(', ')})`,
      );
  if (mesh.at_most_once !== undefined && typeof mesh.at_most_once !== 'boolean')
    throw new Located([...path, 'x-mesh', 'at_most_once'], 'must be true or false');
  const command = at([...path, 'command'], () => commandOf(raw.command));
  const entrypoint = at([...path, 'entrypoint'], () => commandOf(raw.entrypoint));
  if (runtime === 'docker' && typeof raw.image !== 'string')
    throw new Located(path, 'missing "image" (or x-mesh: {runtime: process} with a command)');
  if (runtime === 'docker' && raw.image === '')
    throw new Located([...path, 'image'], 'is empty (an unset variable?), as Compose refuses it');
  if (runtime === 'process' && !command && !entrypoint)
    throw new Located(path, 'a process service needs a command');
  if (runtime === 'process')
    for (const key of [
      'image',
      'volumes',
      'healthcheck',
      'pull_policy',
      ...Object.keys(CONTAINER_KEYS),
    ])
      if (raw[key] !== undefined) context.ignore([...path, key], 'not used by the process runtime');
  return { runtime: runtime as 'docker' | 'process', mesh, command, entrypoint };
}

/** The settings every definition has, with their defaults. */
function requiredSettings(
  stack: string,
  name: string,
  { runtime, command, entrypoint }: ReturnType<typeof launchOf>,
  raw: Raw,
  path: KeyPath,
  context: Context,
): ServiceDefinition {
  const deploy = (raw.deploy ?? {}) as Raw;
  return {
    stack,
    name,
    runtime,
    image: typeof raw.image === 'string' ? raw.image : '',
    command,
    entrypoint,
    env: {
      ...at([...path, 'env_file'], () => envFiles(raw.env_file, context.dir)),
      ...at([...path, 'environment'], () => mapping(raw.environment, context.env)),
    },
    ports: ((raw.ports ?? []) as unknown[]).flatMap((p, i) =>
      at([...path, 'ports', i], () => portsOf(p)),
    ),
    expose: ((raw.expose ?? []) as unknown[]).map((e, i) =>
      at([...path, 'expose', i], () => portNumber(String(e).split('/')[0] as string)),
    ),
    volumes: ((raw.volumes ?? []) as unknown[]).map((v, i) =>
      at([...path, 'volumes', i], () => volumeOf(v, context.dir)),
    ),
    labels: mapping(raw.labels, {}),
    serviceLabels: mapping(deploy.labels, {}),
    healthcheck: at([...path, 'healthcheck'], () =>
      healthcheckOf(raw.healthcheck as Raw, [...path, 'healthcheck']),
    ),
    stopGracePeriodMs: durationAt([...path, 'stop_grace_period'], raw.stop_grace_period, 10_000),
    dependsOn: (Array.isArray(raw.depends_on)
      ? (raw.depends_on as string[])
      : Object.keys((raw.depends_on ?? {}) as Raw)
    ).map((dep) => dep.toLowerCase()),
    mode: deploy.mode === 'global' ? 'global' : 'replicated',
    replicas: deploy.mode === 'global' ? 0 : ((deploy.replicas as number | undefined) ?? 1),
    resources: at([...path, 'deploy', 'resources'], () => resourcesOf(deploy.resources as Raw)),
    placement: {
      constraints: constraintsOf(deploy.placement as Raw | undefined, path, context),
      maxReplicasPerNode: (deploy.placement as Raw | undefined)?.max_replicas_per_node as
        | number
        | undefined,
    },
    restartPolicy: at(
      deploy.restart_policy ? [...path, 'deploy', 'restart_policy'] : [...path, 'restart'],
      () =>
        restartOf(raw.restart, deploy.restart_policy as Raw, [...path, 'deploy', 'restart_policy']),
    ),
    update: updateOf(
      deploy.update_config as Raw,
      [...path, 'deploy', 'update_config'],
      DEFAULT_UPDATE,
    ),
    rollback: updateOf(
      deploy.rollback_config as Raw,
      [...path, 'deploy', 'rollback_config'],
      DEFAULT_ROLLBACK,
    ),
  };
}

/** The settings a definition has only when the file gives them. */
function optionalSettings(
  definition: ServiceDefinition,
  mesh: Raw,
  raw: Raw,
  path: KeyPath,
  context: Context,
): void {
  const { stack, runtime } = definition;
  const deploy = (raw.deploy ?? {}) as Raw;
  if (raw.networks !== undefined)
    definition.networks = at([...path, 'networks'], () =>
      serviceNetworks(raw.networks, path, context),
    );
  const { mounts, named } = serviceVolumes(stack, definition.volumes, context.volumes);
  definition.volumes = mounts;
  if (runtime === 'docker' && named.length > 0) definition.namedVolumes = named;
  for (const kind of ['secrets', 'configs'] as const)
    if (raw[kind] !== undefined)
      definition[kind] = serviceRefs(kind, raw[kind], path, context.values[kind]);
  if (runtime === 'docker') {
    const container = containerSettingsOf(raw, deploy, path);
    if (Object.keys(container).length > 0) definition.container = container;
    const pull = pullOf(raw.pull_policy, [...path, 'pull_policy'], context);
    if (pull) definition.pull = pull;
  }
  if (mesh.at_most_once === true) definition.atMostOnce = true;
  if (mesh.routes !== undefined)
    definition.routes = routesOf(mesh.routes, [...path, 'x-mesh', 'routes'], definition);
  if (mesh.readiness !== undefined)
    definition.readiness = readinessOf(
      mesh.readiness,
      [...path, 'x-mesh', 'readiness'],
      definition,
    );
  if (mesh.autoscale !== undefined) {
    definition.autoscale = autoscaleOf(
      mesh.autoscale,
      [...path, 'x-mesh', 'autoscale'],
      definition,
      deploy.replicas,
    );
    if (deploy.replicas === undefined) definition.replicas = definition.autoscale.min;
  }
  if (definition.healthcheck === undefined) delete definition.healthcheck;
  if (definition.command === undefined) delete definition.command;
  if (definition.entrypoint === undefined) delete definition.entrypoint;
  if (definition.placement.maxReplicasPerNode === undefined)
    delete definition.placement.maxReplicasPerNode;
  const preferences = preferencesOf(deploy.placement as Raw | undefined, path, context);
  if (preferences.length > 0) definition.placement.preferences = preferences;
}

/** Settings inside supported keys that mesh does not act on. */
function reportNestedKeys(raw: Raw, path: KeyPath, context: Context): void {
  if (Array.isArray(raw.depends_on) === false && raw.depends_on)
    for (const [dep, spec] of Object.entries(raw.depends_on as Raw)) {
      const { condition, restart, required } = (spec ?? {}) as Raw;
      if (condition && condition !== 'service_started')
        context.ignore(
          [...path, 'depends_on', dep, 'condition'],
          'mesh waits until the dependency runs (service_started)',
        );
      if (restart !== undefined)
        context.ignore(
          [...path, 'depends_on', dep, 'restart'],
          'a service is not restarted with its dependency',
        );
      if (required === false)
        context.ignore(
          [...path, 'depends_on', dep, 'required'],
          'mesh waits for every dependency of the file',
        );
    }
  if ((raw.healthcheck as Raw | undefined)?.start_interval !== undefined)
    context.ignore(
      [...path, 'healthcheck', 'start_interval'],
      'the health check runs at its interval from the start',
    );
  ((raw.ports ?? []) as unknown[]).forEach((port, i) => {
    for (const key of ['name', 'app_protocol'])
      if (typeof port === 'object' && port !== null && key in port)
        context.ignore([...path, 'ports', i, key], 'a label for people: mesh does not use it');
  });
}

const ENGINE_LABELS =
  'engine labels are not known to mesh: label the nodes instead (mesh node label NODE KEY=VALUE)';

/** Placement constraints, but those on engine labels, which are reported. */
function constraintsOf(placement: Raw | undefined, path: KeyPath, context: Context): string[] {
  const constraints = (placement?.constraints ?? []) as string[];
  constraints.forEach((c, i) => {
    if (c.trim().startsWith('engine.labels.'))
      context.ignore([...path, 'deploy', 'placement', 'constraints', i], ENGINE_LABELS);
  });
  return constraints.filter((c) => !c.trim().startsWith('engine.labels.'));
}

/** placement.preferences: `spread: node.labels.KEY` each, in order. */
function preferencesOf(placement: Raw | undefined, path: KeyPath, context: Context): string[] {
  const preferences = (placement?.preferences ?? []) as Raw[];
  return preferences.flatMap((preference, i) => {
    const at: KeyPath = [...path, 'deploy', 'placement', 'preferences', i, 'spread'];
    const spread = String(preference.spread ?? '').trim();
    if (spread.startsWith('engine.labels.')) {
      context.ignore(at, ENGINE_LABELS);
      return [];
    }
    if (!/^node\.labels\.[\w.-]+$/.test(spread)) {
      // Swarm accepts it too, and spreads across nodes as it does by default.
      context.ignore(
        at,
        'tasks spread across nodes by default; only node.labels.KEY spreads further',
      );
      return [];
    }
    return [spread];
  });
}

/** The per-container keys the service sets (pids from deploy.resources.limits too). */
function containerSettingsOf(raw: Raw, deploy: Raw, path: KeyPath): ContainerSettings {
  const settings: ContainerSettings = {};
  for (const [key, [setting, read]] of Object.entries(CONTAINER_KEYS))
    if (raw[key] !== undefined)
      Object.assign(settings, { [setting]: at([...path, key], () => read(raw[key])) });
  const pids = ((deploy.resources as Raw | undefined)?.limits as Raw | undefined)?.pids;
  if (pids !== undefined) settings.pidsLimit = Number(pids);
  return settings;
}

function reportDeployKeys(deploy: Raw, path: KeyPath, context: Context): void {
  for (const [key, reason] of Object.entries(IGNORED_DEPLOY)) {
    const steps = key.split('.');
    let value: unknown = deploy;
    for (const step of steps) value = (value as Raw | undefined)?.[step];
    if (value !== undefined) context.ignore([...path, ...steps], reason);
  }
}

/** A duration setting in milliseconds, or the fallback when it is not set. */
function durationAt(path: KeyPath, value: unknown, fallback: number): number {
  return value === undefined ? fallback : at(path, () => parseDuration(value as string));
}

function commandOf(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? splitCommand(value) : (value as unknown[]).map(String);
}

/** Compose's "list of KEY=VALUE or mapping" form; a key without a value comes from `env`. */
function mapping(value: unknown, env: NodeJS.ProcessEnv): Record<string, string> {
  if (!value) return {};
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((item) => {
        const text = String(item);
        const eq = text.indexOf('=');
        return eq < 0 ? [text, undefined] : [text.slice(0, eq), text.slice(eq + 1)];
      })
    : Object.entries(value as Raw);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    const resolved = v === undefined || v === null ? env[k] : String(v);
    if (resolved !== undefined) out[k] = resolved;
  }
  return out;
}

function envFiles(value: unknown, dir: string): Record<string, string> {
  if (value === undefined) return {};
  const files = (Array.isArray(value) ? value : [value]).map((f) =>
    typeof f === 'string'
      ? { path: f, required: true }
      : (f as { path: string; required?: boolean }),
  );
  const env: Record<string, string> = {};
  for (const { path, required } of files) {
    let text: string;
    try {
      text = readFileSync(resolve(dir, path), 'utf8');
    } catch (error) {
      if (required === false) continue;
      throw new Error(`cannot read env file ${path}: ${(error as Error).message}`);
    }
    for (const line of text.split('\n')) {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith('#')) continue;
      const eq = trimmed.indexOf('=');
      if (eq <= 0) throw new Error(`env file ${path}: "${trimmed}" is not KEY=VALUE`);
      env[trimmed.slice(0, eq).replace(/^export\s+/, '')] = trimmed
        .slice(eq + 1)
        .replace(/^(["'])(.*)\1$/, '$2');
    }
  }
  return env;
}

function portNumber(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new Error(`"${text}" is not a port (1-65535)`);
  return n;
}

function range(text: string): number[] {
  const [from, to] = text.split('-');
  const start = portNumber(from as string);
  const end = to === undefined ? start : portNumber(to);
  if (end < start) throw new Error(`port range ${text} runs backwards`);
  return Array.from({ length: end - start + 1 }, (_, i) => start + i);
}

const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * x-mesh routes: each a host name (or `{host, path, port, strip_prefix}`) the HTTP ingress sends
 * to this service; the port defaults to the service's first TCP port.
 */
function routesOf(value: unknown, path: KeyPath, service: ServiceDefinition): HttpRouteSpec[] {
  if (!Array.isArray(value))
    throw new Located(path, 'must be a list of hosts or {host, path, port, strip_prefix}');
  const tcpPorts = [
    ...service.ports.filter((p) => p.protocol === 'tcp').map((p) => p.target),
    ...service.expose,
  ];
  return value.map((entry, i) => {
    const at: KeyPath = [...path, i];
    const spec = (typeof entry === 'string' ? { host: entry } : entry) as Raw;
    for (const key of Object.keys(spec))
      if (!['host', 'path', 'port', 'strip_prefix'].includes(key))
        throw new Located([...at, key], 'unknown route setting (host, path, port, strip_prefix)');
    const host = String(spec.host ?? '').toLowerCase();
    if (!HOST_NAME.test(host))
      throw new Located([...at, 'host'], `"${String(spec.host)}" is not a host name`);
    const prefix = spec.path === undefined ? '/' : String(spec.path);
    if (!prefix.startsWith('/') || /\s/.test(prefix))
      throw new Located([...at, 'path'], `"${prefix}" is not a path prefix (it starts with /)`);
    const port = spec.port === undefined ? tcpPorts[0] : Number(spec.port);
    if (port === undefined)
      throw new Located(at, 'the service has no TCP port (ports or expose) for the route to reach');
    if (!tcpPorts.includes(port))
      throw new Located(
        [...at, 'port'],
        `port ${String(spec.port)} is not one of the service's TCP ports (${tcpPorts.join(', ')})`,
      );
    if (spec.strip_prefix !== undefined && typeof spec.strip_prefix !== 'boolean')
      throw new Located([...at, 'strip_prefix'], 'must be true or false');
    return { host, path: prefix, port, stripPrefix: spec.strip_prefix === true };
  });
}

/** Why each key of a service's network entry is not applied: never a refusal. */
const NETWORK_ENTRY_IGNORED: Record<string, string> = {
  aliases: 'other services reach it by its service name (through its service address)',
  ipv4_address: "each node's bridge has its own subnet: the engine assigns container addresses",
  ipv6_address: "each node's bridge has its own subnet: the engine assigns container addresses",
  link_local_ips: 'the engine assigns container addresses',
  mac_address: 'the engine assigns MAC addresses',
  driver_opts: 'the bridges mesh makes take no per-container driver options',
  priority: 'the networks are joined in the order listed',
  gw_priority: 'the engine picks the default gateway itself',
  interface_name: 'the engine names the interfaces',
};

/** A service's `networks:` (a list, or a map whose values say aliases and addresses) as keys. */
function serviceNetworks(value: unknown, path: KeyPath, context: Context): string[] {
  const names = Array.isArray(value) ? (value as string[]) : Object.keys(value as Raw);
  return names.map((name) => {
    const key = context.networks.get(name);
    if (!key)
      throw new Located(
        [...path, 'networks', name],
        `network "${name}" is not declared under the top-level networks`,
      );
    if (!Array.isArray(value))
      for (const setting of Object.keys(((value as Raw)[name] ?? {}) as Raw))
        context.ignore(
          [...path, 'networks', name, setting],
          NETWORK_ENTRY_IGNORED[setting] ?? 'not applied by mesh',
        );
    return key;
  });
}

/**
 * pull_policy as the nodes apply it: always and never as they say; missing and if_not_present
 * are the default (absent); build (mesh builds nothing) is noted and pulls when missing.
 */
function pullOf(value: unknown, path: KeyPath, context: Context): PullPolicy | undefined {
  if (value === undefined || value === 'missing' || value === 'if_not_present') return undefined;
  if (value === 'always' || value === 'never') return value;
  context.ignore(path, `"${String(value)}" is not acted on: the image is pulled when missing`);
  return undefined;
}

/** "80", "8080:80", "127.0.0.1:8080:80/udp", "8000-8001:80-81", or the long form. */
function portsOf(value: unknown): PortSpec[] {
  if (typeof value === 'object' && value !== null) {
    const p = value as Raw;
    const hostIp = p.host_ip === undefined ? undefined : hostIpOf(String(p.host_ip));
    return [
      {
        target: portNumber(String(p.target)),
        protocol: protocolOf(p.protocol),
        ...(p.published !== undefined ? { published: portNumber(String(p.published)) } : {}),
        ...(p.mode === 'host' ? { mode: 'host' as const } : {}),
        ...(hostIp ? { hostIp } : {}),
      },
    ];
  }
  const text = String(value);
  const [spec, protocolText] = text.split('/');
  const protocol = protocolOf(protocolText);
  const parts = (spec as string).split(':');
  if (parts.length > 3) throw new Error(`"${text}" is not a port mapping (HOST:CONTAINER)`);
  const hostIp = parts.length === 3 ? hostIpOf(parts[0] as string) : undefined;
  const targets = range(parts[parts.length - 1] as string);
  const published = parts.length > 1 ? range(parts[parts.length - 2] as string) : undefined;
  if (published && published.length !== targets.length)
    throw new Error(`"${text}": the host and container ranges differ in length`);
  return targets.map((target, i) => ({
    target,
    protocol,
    ...(published ? { published: published[i] as number } : {}),
    ...(hostIp ? { hostIp } : {}),
  }));
}

/** A published port's host IP: where it is published (PortSpec.hostIp); "every address" is none. */
function hostIpOf(text: string): string | undefined {
  if (text === '' || text === '0.0.0.0' || text === '::') return undefined;
  if (!isIP(text)) throw new Error(`"${text}" is not an IP address`);
  return text;
}

function protocolOf(value: unknown): 'tcp' | 'udp' {
  if (value === undefined || value === 'tcp') return 'tcp';
  if (value === 'udp') return 'udp';
  throw new Error(`protocol "${String(value)}" is not tcp or udp`);
}

/** Named volumes stay as they are (one per node); relative host paths are relative to the file. */
function volumeOf(value: unknown, dir: string): string {
  if (typeof value === 'object' && value !== null) {
    const v = value as Raw;
    if (v.type !== undefined && v.type !== 'bind' && v.type !== 'volume')
      throw new Error(`volume type "${String(v.type)}" is not supported (bind or volume)`);
    if (!v.target) throw new Error('a volume needs a target');
    const source = v.source ? hostPath(String(v.source), dir) : '';
    return [source, String(v.target), v.read_only ? 'ro' : ''].filter(Boolean).join(':');
  }
  const parts = String(value).split(':');
  if (parts.length === 1) return parts[0] as string;
  // Compose refuses it too: `${DATA}:/data` with DATA unset would mount nothing named.
  if (parts[0] === '')
    throw new Error(`"${String(value)}" has an empty source (an unset variable?)`);
  return [hostPath(parts[0] as string, dir), ...parts.slice(1)].join(':');
}

function hostPath(source: string, dir: string): string {
  return source.startsWith('.') ? resolve(dir, source) : source;
}

function healthcheckOf(raw: Raw | undefined, path: KeyPath): Healthcheck | undefined {
  if (!raw || raw.disable === true) return undefined;
  const test =
    typeof raw.test === 'string' ? ['CMD-SHELL', raw.test] : ((raw.test ?? []) as string[]);
  if (test[0] === 'NONE') return undefined;
  if (test.length === 0) throw new Error('a healthcheck needs a test');
  return {
    test,
    intervalMs: durationAt([...path, 'interval'], raw.interval, 30_000),
    timeoutMs: durationAt([...path, 'timeout'], raw.timeout, 30_000),
    retries: (raw.retries as number | undefined) ?? 3,
    startPeriodMs: durationAt([...path, 'start_period'], raw.start_period, 0),
  };
}

function resourcesOf(raw: Raw | undefined): ServiceDefinition['resources'] {
  const limits = (raw?.limits ?? {}) as Raw;
  const reservations = (raw?.reservations ?? {}) as Raw;
  const cpus = (v: unknown) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`cpus "${String(v)}" is not a positive number`);
    return n;
  };
  const out: ServiceDefinition['resources'] = {
    limits: {},
    reservations: {
      cpus: reservations.cpus === undefined ? 0 : cpus(reservations.cpus),
      memoryBytes:
        reservations.memory === undefined ? 0 : parseBytes(reservations.memory as string),
    },
  };
  if (limits.cpus !== undefined) out.limits.cpus = cpus(limits.cpus);
  if (limits.memory !== undefined) out.limits.memoryBytes = parseBytes(limits.memory as string);
  return out;
}

/** deploy.restart_policy wins; else compose's `restart:` says the condition. */
function restartOf(restart: unknown, policy: Raw | undefined, path: KeyPath): RestartPolicy {
  if (policy) {
    const condition = policy.condition ?? 'any';
    if (condition !== 'none' && condition !== 'on-failure' && condition !== 'any')
      throw new Error('condition must be none, on-failure or any');
    return {
      condition,
      delayMs: durationAt([...path, 'delay'], policy.delay, DEFAULT_RESTART.delayMs),
      maxAttempts: (policy.max_attempts as number | undefined) ?? 0,
      windowMs: durationAt([...path, 'window'], policy.window, 0),
    };
  }
  if (restart === undefined) return DEFAULT_RESTART;
  const [kind, count] = String(restart).split(':');
  if (kind === 'no') return { ...DEFAULT_RESTART, condition: 'none' };
  if (kind === 'always' || kind === 'unless-stopped') return DEFAULT_RESTART;
  if (kind === 'on-failure')
    return { ...DEFAULT_RESTART, condition: 'on-failure', maxAttempts: Number(count ?? 0) };
  throw new Error(
    `restart "${String(restart)}" is not no, always, on-failure[:N] or unless-stopped`,
  );
}

function updateOf(raw: Raw | undefined, path: KeyPath, defaults: UpdatePolicy): UpdatePolicy {
  if (!raw) return defaults;
  const failureAction = raw.failure_action ?? defaults.failureAction;
  if (failureAction !== 'pause' && failureAction !== 'continue' && failureAction !== 'rollback')
    throw new Located(
      [...path, 'failure_action'],
      `"${String(failureAction)}" is not pause, continue or rollback`,
    );
  // The schema allows only start-first and stop-first.
  const order = (raw.order as UpdatePolicy['order'] | undefined) ?? defaults.order;
  const ratio = raw.max_failure_ratio ?? defaults.maxFailureRatio;
  if (typeof ratio !== 'number' || ratio < 0 || ratio > 1)
    throw new Located([...path, 'max_failure_ratio'], 'must be a number from 0 to 1');
  return {
    parallelism: (raw.parallelism as number | undefined) ?? defaults.parallelism,
    delayMs: durationAt([...path, 'delay'], raw.delay, defaults.delayMs),
    order,
    failureAction,
    monitorMs: durationAt([...path, 'monitor'], raw.monitor, defaults.monitorMs),
    maxFailureRatio: ratio,
  };
}

const READINESS_KEYS = [
  'http',
  'tcp',
  'port',
  'interval',
  'timeout',
  'failure_threshold',
  'success_threshold',
  'start_period',
];

/**
 * x-mesh readiness: `http: /path` (with `port`, by default the service's first TCP port) or
 * `tcp: PORT`, and when to run it. Only a task that passes it takes traffic.
 */
function readinessOf(value: unknown, path: KeyPath, service: ServiceDefinition): ReadinessProbe {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Located(path, 'must be a mapping with http: PATH or tcp: PORT');
  const spec = value as Raw;
  for (const key of Object.keys(spec))
    if (!READINESS_KEYS.includes(key))
      throw new Located([...path, key], `unknown readiness setting (${READINESS_KEYS.join(', ')})`);
  if ((spec.http === undefined) === (spec.tcp === undefined))
    throw new Located(path, 'needs one of http: PATH or tcp: PORT');
  const tcpPorts = [
    ...service.ports.filter((p) => p.protocol === 'tcp').map((p) => p.target),
    ...service.expose,
  ];
  const kind = spec.http === undefined ? 'tcp' : 'http';
  const given = kind === 'tcp' ? spec.tcp : spec.port;
  const portPath = [...path, kind === 'tcp' ? 'tcp' : 'port'];
  const port = given === undefined ? tcpPorts[0] : at(portPath, () => portNumber(String(given)));
  if (port === undefined)
    throw new Located(path, 'the service has no TCP port (ports or expose): say which with port');
  const threshold = (key: string, fallback: number) => {
    const n = spec[key] ?? fallback;
    if (!Number.isInteger(n) || (n as number) < 1)
      throw new Located([...path, key], 'must be a whole number >= 1');
    return n as number;
  };
  const probe: ReadinessProbe = {
    kind,
    port,
    intervalMs: durationAt([...path, 'interval'], spec.interval, 2000),
    timeoutMs: durationAt([...path, 'timeout'], spec.timeout, 1000),
    failureThreshold: threshold('failure_threshold', 3),
    successThreshold: threshold('success_threshold', 1),
    startPeriodMs: durationAt([...path, 'start_period'], spec.start_period, 0),
  };
  if (kind === 'http') {
    const target = String(spec.http);
    if (!target.startsWith('/') || /\s/.test(target))
      throw new Located([...path, 'http'], `"${target}" is not a path (it starts with /)`);
    probe.path = target;
  }
  if (probe.intervalMs < 1 || probe.timeoutMs < 1)
    throw new Located(path, 'interval and timeout must be longer than 0');
  return probe;
}

/** depends_on names services of this file; published ports are not claimed twice. */
function checkReferences(
  services: ServiceDefinition[],
  declared: readonly string[],
  context: Context,
): void {
  // Every name the file declares, valid or not: one refused is reported once, where it is.
  const names = new Set(declared.map((key) => key.toLowerCase()));
  const claimed = new Map<string, string>();
  const keyOf = (service: ServiceDefinition) =>
    context.serviceKeys.get(service.name) ?? service.name;
  for (const service of services) {
    service.dependsOn.forEach((dep) => {
      if (!names.has(dep))
        context.problems.push(
          context.source.problem(
            ['services', keyOf(service), 'depends_on'],
            `depends on "${dep}", which this file does not declare`,
          ),
        );
    });
    service.ports.forEach((p, i) => {
      if (p.published === undefined) return;
      const key = `${p.published}/${p.protocol}`;
      const owner = claimed.get(key);
      if (owner)
        context.problems.push(
          context.source.problem(
            ['services', keyOf(service), 'ports', i],
            `port ${key} is already published by service ${owner}`,
          ),
        );
      else claimed.set(key, service.name);
    });
    if (service.placement.maxReplicasPerNode === 0)
      context.problems.push(
        context.source.problem(
          ['services', keyOf(service), 'deploy', 'placement', 'max_replicas_per_node'],
          'must be at least 1',
        ),
      );
  }
}

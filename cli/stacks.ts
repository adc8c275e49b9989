import { setTimeout as sleep } from 'node:timers/promises';
import type {
  DeployRequest,
  DeployResponse,
  ServiceDetail,
  ServiceRow,
  StackRow,
  TaskRow,
} from '../agent/control/api.js';
import { type PortSpec, type PullPolicy, serviceId } from '../mesh/api/services.js';
import type { PublishedPort } from '../mesh/api/tasks.js';
import { pollUntil } from '../mesh/poll.js';
import { hostOf } from '../mesh/transport/address.js';
import {
  DATA_DIR,
  dataDirOf,
  durationOf,
  JSON_OUTPUT,
  parse,
  runSubcommand,
  UsageError,
} from './args.js';
import { autoscaleLines, autoscaleShort } from './autoscale-text.js';
import { SERVICE_COMMANDS, VOLUME_COMMANDS } from './commands.js';
import { callAgent, NoAgentError } from './control-client.js';
import { follow } from './follow.js';
import { LISTING_OPTIONS, printListing } from './listing.js';
import { ago, plural, print, shorten, table } from './output.js';
import { type Ignored, readStackFile, type StackFile } from './stackfile/stack-file.js';

// The local socket answers in a millisecond or two: poll often, so the rollout ends when it is done.
const POLL_MS = 100;
/**
 * How long a deploy that publishes ports waits for every node's word on them (served, or taken
 * by something else there); it goes on as soon as the last node's is in.
 */
const PORT_REPORTS_MS = 15_000;
/** How long `mesh rm` waits for the tasks to stop (each within its stop_grace_period). */
const RM_TIMEOUT_MS = 120_000;

/** A port a service publishes: [IP:]8080->80/tcp, `*` when any port will do, (host) for mode host. */
function portSpecText(p: PortSpec): string {
  const published = `${p.hostIp ? `${p.hostIp}:` : ''}${p.published ?? '*'}`;
  return `${published}->${p.target}/${p.protocol}${p.mode === 'host' ? ' (host)' : ''}`;
}

/** Where a task's container port is reachable: 127.0.0.1:8080->80/tcp. */
function taskPortText(p: PublishedPort): string {
  return `${p.hostIp}:${p.hostPort}->${p.target}/${p.protocol}`;
}

/** The keys a deploy ignores, once, grouped by why: each group names its keys and lines. */
function ignoredReport(files: string[], ignored: Ignored[]): string {
  const byReason = new Map<string, string[]>();
  // With several files, each key says which one sets it.
  const where = (i: Ignored) => (files.length > 1 ? `${i.file} line ${i.line}` : `line ${i.line}`);
  for (const i of ignored)
    byReason.set(i.reason, [...(byReason.get(i.reason) ?? []), `${i.path} (${where(i)})`]);
  const lines = [...byReason].map(([reason, keys]) => `  ${keys.join(', ')}: ${reason}`);
  return `mesh: ignoring ${plural(ignored.length, 'key')} of ${files.join(' + ')}:\n${lines.join('\n')}\n`;
}

/** Where a service stands in a rollout, and whether it is done or cannot get there. */
interface Progress {
  line: string;
  done: boolean;
  failure?: string;
}

/** What the first task of the new version that is not ready yet waits for, in words. */
function waitingFor(task: TaskRow): string {
  if (task.state === 'running')
    return `${task.id} not ready: ${task.probe ?? 'no probe result yet'}`;
  return `${task.id} ${task.state}${task.reason ? `: ${task.reason}` : ''}`;
}

/**
 * A service's progress from what the cluster says. `deployed`: the version this command wrote;
 * a later version that rolls back means the update failed.
 */
function progressOf(
  service: StackRow['services'][number],
  tasks: TaskRow[],
  deployed: number | undefined,
): Progress {
  if ('damaged' in service)
    return {
      line: `${service.id}: damaged`,
      done: false,
      failure: `${service.id} is damaged: ${service.damaged}`,
    };
  const own = tasks.filter((t) => t.service === service.id && t.desired === 'running');
  const current = own.filter((t) => t.serviceVersion === service.version);
  const outdated = own.length - current.length;
  const { rollout } = service;
  const unready = current.find((t) => !t.ready);
  const step = unready
    ? waitingFor(unready)
    : outdated > 0
      ? 'replacing the next task'
      : rollout?.state === 'updating' && rollout.readyAt
        ? 'watching for failures for the monitor period'
        : undefined;
  const line =
    `${service.id}: ${service.ready}/${service.desired} ready` +
    (rollout ? `, ${current.length}/${service.desired} updated` : '') +
    (outdated > 0 ? `, ${outdated} to replace` : '') +
    (service.rollingBack && rollout?.state === 'updating' ? ', rolling back' : '') +
    (step && rollout?.state !== 'paused' ? ` (${step})` : '');
  const failedUpdate = service.rollingBack && deployed !== undefined && service.version > deployed;
  if (rollout?.state === 'paused')
    return { line, done: false, failure: `${service.id} paused: ${rollout.message}` };
  if (failedUpdate && rollout?.state === 'rolled-back')
    return { line, done: false, failure: `${service.id} ${rollout.message}` };
  if (rollout && rollout.state !== 'updating') return { line, done: true };
  if (rollout) return { line, done: false };
  // A service that was just created: it runs once every task is ready, unless one cannot start.
  return {
    line,
    done: service.ready === service.desired && current.length === service.desired && outdated === 0,
    failure: service.failing ?? undefined,
  };
}

/** A port a node cannot serve, in words: `<port> on <node>: <why>`. */
function unservedText(u: ServiceRow['unserved'][number]): string {
  return `${u.port} on ${u.node}: ${u.reason}`;
}

/**
 * A converged stack whose published port no node serves (each reports it taken) is not what the
 * user asked for: said, naming the holders, and the deploy fails. A port some nodes cannot
 * serve (an ingress port among them) is a warning, naming the node and the holder.
 */
function servedSomewhere(rows: StackRow['services']): number {
  let code = 0;
  for (const row of rows) {
    if ('damaged' in row) continue;
    for (const u of row.unserved.filter((u) => !row.servedNowhere.includes(u.port)))
      process.stderr.write(`mesh: warning: ${row.id} is not served on port ${unservedText(u)}\n`);
    for (const port of row.servedNowhere) {
      const why = row.unserved.filter((u) => u.port === port).map(unservedText);
      process.stderr.write(
        `mesh: published port ${port} of ${row.id} is served on no node (${why.join('; ')}): free it there, or publish another port\n`,
      );
      code = 1;
    }
  }
  return code;
}

/** Prints each service's progress as it changes, until all converged, one failed, or timeout. */
async function followRollout(
  dataDir: string,
  stack: string,
  deployed: ReadonlyMap<string, number | undefined>,
  timeoutMs: number,
): Promise<number> {
  const rowsNow = async () =>
    (
      (await callAgent(dataDir, 'GET /v1/stacks', {})).find((s) => s.name === stack)?.services ?? []
    ).filter((s) => deployed.has(s.id));
  const outcome = await follow(
    async () => {
      const rows = await rowsNow();
      const tasks = await callAgent(dataDir, 'GET /v1/tasks', { stack });
      const progress = rows.map((row) => progressOf(row, tasks, deployed.get(row.id)));
      const failure = progress.find((p) => p.failure)?.failure;
      const waiting = progress.filter((p) => !p.done).map((p) => p.line);
      return {
        lines: progress.map((p) => `  ${p.line}`),
        outcome: failure ? { failure } : waiting.length === 0 ? { rows } : undefined,
        late: `mesh: stack ${stack} did not converge within ${timeoutMs / 1000}s, still waiting: ${waiting.join('; ')}; see "mesh ps ${stack}"`,
      };
    },
    { timeoutMs, intervalMs: POLL_MS },
  );
  if (!outcome) return 1;
  if ('failure' in outcome) {
    process.stderr.write(`mesh: rollout of ${stack} failed: ${outcome.failure}\n`);
    return 1;
  }
  process.stderr.write(`mesh: stack ${stack} converged\n`);
  // Each node reports the published ports it took up, served or not, and that its HTTP ingress
  // listens (its workers start with its first route), through gossip and its record, which may
  // come a moment after the replicas are ready: wait for every node's word.
  let rows = outcome.rows;
  if (rows.some((row) => unheard(row) !== undefined)) {
    const reported = await pollUntil(
      async () => {
        rows = await rowsNow();
        return rows.every((row) => unheard(row) === undefined);
      },
      { timeoutMs: PORT_REPORTS_MS, intervalMs: POLL_MS },
    );
    if (!reported)
      process.stderr.write(
        `mesh: warning: not every node reported on ${stack} within ${PORT_REPORTS_MS / 1000}s (${rows
          .flatMap((row) => unheard(row) ?? [])
          .join('; ')}); see "mesh ls" and "mesh node ls"\n`,
      );
  }
  return servedSomewhere(rows);
}

/** What a service still waits to hear from nodes, in words; undefined when nothing. */
function unheard(row: StackRow['services'][number]): string | undefined {
  if ('damaged' in row) return undefined;
  const words = [
    ...(row.portsUnreported.length
      ? [`no word on published ports ${row.portsUnreported.join(', ')}`]
      : []),
    ...(row.ingressSilent.length
      ? [`HTTP ingress not listening yet on ${row.ingressSilent.join(', ')}`]
      : []),
  ];
  return words.length ? `${row.id}: ${words.join(', ')}` : undefined;
}

export async function deploy(args: string[]): Promise<number> {
  const { values, positionals } = parse('deploy', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    'compose-file': { type: 'string', short: 'c', multiple: true },
    detach: { type: 'boolean', short: 'd' },
    prune: { type: 'boolean' },
    timeout: { type: 'string' },
    'dry-run': { type: 'boolean' },
    strict: { type: 'boolean' },
    pull: { type: 'string' },
  });
  // Several files are merged in order, as Compose and docker stack deploy merge them.
  const files = (values['compose-file'] as string[] | undefined) ?? [];
  if (files.length === 0)
    throw new UsageError(
      'deploy needs a compose file: mesh deploy -c FILE [-c OVERRIDE...] [STACK]',
    );
  const timeoutMs = durationOf(values.timeout, '--timeout') ?? 300_000;
  const stackFile = readStackFile(files, positionals[0]);
  if (stackFile.ignored.length > 0) process.stderr.write(ignoredReport(files, stackFile.ignored));
  // As Compose does: one warning per use of a variable that is not set.
  for (const u of stackFile.unset)
    process.stderr.write(`mesh: warning: ${u.file}:${u.line}: ${u.path}: ${u.reason}\n`);
  const dataDir = dataDirOf(values);
  const request = {
    stack: stackFile.stack,
    services: stackFile.services,
    values: stackFile.values,
    prune: Boolean(values.prune),
    strict: Boolean(values.strict),
    pull: pullOption(values.pull),
  };
  if (values['dry-run']) return dryRun(dataDir, request, stackFile, Boolean(values.json));
  const response = await callAgent(dataDir, 'POST /v1/stacks', request);
  if (values.json) print(true, response, () => '');
  else
    for (const s of response.services)
      process.stderr.write(
        `mesh: ${s.change} ${s.id}${s.version ? ` (version ${s.version})` : ''}\n`,
      );
  warnUnplaceable(response.unplaceable);
  if (values.detach) return 0;
  // A service no node fits cannot converge now: the rollout follows the others.
  const waiting = new Set(response.unplaceable.map((u) => u.id));
  const live = response.services.filter((s) => s.change !== 'removed' && !waiting.has(s.id));
  const deployed = new Map(live.map((s) => [s.id, s.version]));
  const code =
    deployed.size > 0 ? await followRollout(dataDir, stackFile.stack, deployed, timeoutMs) : 0;
  if (code === 0 && waiting.size > 0)
    process.stderr.write(
      `mesh: ${[...waiting].join(', ')} ${waiting.size === 1 ? 'waits' : 'wait'} for a node that fits; see "mesh ps ${stackFile.stack}"\n`,
    );
  return code;
}

/** As Swarm does, a service no node fits yet is deployed and waits; the user is told which. */
function warnUnplaceable(unplaceable: DeployResponse['unplaceable']): void {
  for (const u of unplaceable)
    process.stderr.write(
      `mesh: warning: ${u.reason}: its tasks stay pending until a node fits (--strict refuses such a deploy)\n`,
    );
}

/**
 * What a deploy would do, changing nothing: the agent checks what needs the cluster (placement,
 * ports, hosts) and says what would change; without an agent, the file's own checks only.
 */
async function dryRun(
  dataDir: string,
  request: DeployRequest,
  stackFile: StackFile,
  json: boolean,
): Promise<number> {
  let changes: DeployResponse['services'] | undefined;
  let unplaceable: DeployResponse['unplaceable'] = [];
  try {
    const answer = await callAgent(dataDir, 'POST /v1/stacks', { ...request, dryRun: true });
    changes = answer.services;
    unplaceable = answer.unplaceable;
  } catch (error) {
    if (!(error instanceof NoAgentError)) throw error;
    process.stderr.write(
      `mesh: ${error.message}: checked the file only (placement, ports and hosts are checked by an agent)\n`,
    );
  }
  const services = stackFile.services.map((s) => {
    const change = changes?.find((c) => c.id === serviceId(s));
    return {
      id: serviceId(s),
      change: change?.change ?? null,
      version: change?.version ?? null,
      mode: s.mode,
      replicas: s.mode === 'global' ? null : s.replicas,
      runtime: s.runtime,
      image: s.runtime === 'docker' ? s.image : (s.command ?? []).join(' '),
      constraints: s.placement.constraints,
      ports: s.ports,
      routes: (s.routes ?? []).map((r) => `${r.host}${r.path}`),
    };
  });
  const removed = (changes ?? []).filter((c) => c.change === 'removed').map((c) => c.id);
  const result = {
    stack: stackFile.stack,
    checkedBy: changes ? 'agent' : 'file',
    services,
    removed,
    ignored: stackFile.ignored,
    unset: stackFile.unset,
    unplaceable,
  };
  if (!json) warnUnplaceable(unplaceable);
  print(json, result, () =>
    [
      `dry run of stack ${stackFile.stack}: nothing was changed`,
      table(
        ['SERVICE', 'CHANGE', 'MODE', 'REPLICAS', 'IMAGE', 'PLACEMENT', 'PORTS', 'ROUTES'],
        services.map((s) => [
          s.id,
          s.change ? `${s.change}${s.version ? ` (version ${s.version})` : ''}` : '?',
          s.mode,
          s.replicas === null ? '-' : String(s.replicas),
          s.image,
          s.constraints.join(', ') || '-',
          s.ports.map(portSpecText).join(', ') || '-',
          s.routes.join(', ') || '-',
        ]),
      ),
      ...removed.map((id) => `would remove ${id} (--prune)`),
    ].join('\n'),
  );
  return 0;
}

export async function ls(args: string[]): Promise<number> {
  const { values } = parse('ls', args, { ...DATA_DIR, ...JSON_OUTPUT, ...LISTING_OPTIONS });
  const stacks = await callAgent(dataDirOf(values), 'GET /v1/stacks', {});
  // A row per service, its stack named in it: what -q, --filter and --format see.
  const rows = stacks.flatMap((stack) => stack.services.map((s) => ({ stack: stack.name, ...s })));
  printListing(values, rows, {
    id: (s) => s.id,
    // --json keeps its shape: the stacks, each with the services kept.
    json: (kept) =>
      stacks
        .map((stack) => ({
          ...stack,
          services: stack.services.filter((s) => kept.some((k) => k.id === s.id)),
        }))
        .filter((stack) => stack.services.length > 0 || kept.length === rows.length),
    shown: (s) => ('ports' in s ? { ...s, ports: s.ports.map(portSpecText) } : s),
    table: (kept) =>
      table(
        ['STACK', 'SERVICE', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS', 'ADDRESS', 'NAME'],
        kept.map((s) =>
          'damaged' in s
            ? [s.stack, s.id, '-', '-', `damaged: ${s.damaged}`, '-', '-', '-']
            : [
                s.stack,
                s.id,
                s.mode,
                replicasText(s),
                shorten(s.runtime === 'process' ? `(process) ${s.image}` : s.image, 50),
                [
                  s.ports.map(portSpecText).join(', ') || '-',
                  ...s.unserved.map((u) => `(not served: ${unservedText(u)})`),
                ].join(' '),
                s.address ?? '(pending)',
                s.dnsName,
              ],
        ),
      ),
  });
  return 0;
}

/** `3/3`, with the rollout under way and the autoscaling: `3/5 (updating; auto 2–10, cpu 84%/60%)`. */
function replicasText(s: ServiceRow): string {
  const notes = [
    s.rollout && s.rollout.state !== 'completed'
      ? s.rollingBack && s.rollout.state === 'updating'
        ? 'rolling back'
        : s.rollout.state
      : '',
    s.autoscale ? autoscaleShort(s.autoscale) : '',
  ].filter(Boolean);
  return `${s.ready}/${s.desired}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
}

/** What `mesh inspect` says of a service's definition, a line per concern. */
function specLines(spec: ServiceDetail | undefined): string[] {
  if (!spec) return [];
  const seconds = (ms: number) => `${ms / 1000}s`;
  const { update, restartPolicy: restart } = spec;
  const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
  return [
    `  ${spec.runtime === 'process' ? 'process' : `image: ${spec.image}`}${spec.pull ? ` (pull ${spec.pull})` : ''}; version ${spec.version}, updated ${ago(spec.updatedAt)}${spec.rollout ? `; rollout ${spec.rollout.state}` : ''}`,
    ...(spec.entrypoint ? [`  entrypoint: ${JSON.stringify(spec.entrypoint)}`] : []),
    ...(spec.command ? [`  command: ${JSON.stringify(spec.command)}`] : []),
    `  env: ${env.join(' ') || '-'}`,
    `  ${spec.mode === 'global' ? 'global: one task per node' : `replicas: ${spec.replicas}`}; constraints: ${spec.placement.constraints.join(', ') || '-'}`,
    ...autoscaleLines(spec),
    `  update: parallelism ${update.parallelism}, delay ${seconds(update.delayMs)}, ${update.order}, on failure ${update.failureAction}, monitor ${seconds(update.monitorMs)}; restart: ${restart.condition}, delay ${seconds(restart.delayMs)}${restart.maxAttempts ? `, at most ${restart.maxAttempts}` : ''}; stop grace ${seconds(spec.stopGracePeriodMs)}`,
  ];
}

/** A service's address, name, ports and endpoints as this node routes them. */
export async function inspect(args: string[]): Promise<number> {
  const { values, positionals } = parse('inspect', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [service] = positionals;
  if (!service) throw new UsageError('inspect needs a service: STACK.SERVICE or SERVICE');
  const routes = await callAgent(dataDirOf(values), 'GET /v1/routes', { service });
  const volumes = await callAgent(dataDirOf(values), 'GET /v1/volumes', {});
  const specs = new Map(
    await Promise.all(
      routes.services.map(
        async (s) =>
          [s.id, await callAgent(dataDirOf(values), 'GET /v1/service', { service: s.id })] as const,
      ),
    ),
  );
  const pinsOf = (id: string) =>
    volumes
      .filter((v) => v.services.includes(id))
      .map((v) => `  pinned to node ${v.node} (${v.nodeStatus}) by volume ${v.name}`);
  print(
    Boolean(values.json),
    { ...routes, services: routes.services.map((s) => ({ ...s, spec: specs.get(s.id) })), volumes },
    () =>
      [
        ...routes.services.map((s) =>
          [
            `${s.id}  ${s.dnsName}  ${s.address ?? '(no address yet)'}`,
            ...specLines(specs.get(s.id)),
            ...pinsOf(s.id),
            `  ports: ${
              [
                ...s.ports.map((p) => `${p.port} (${p.source})`),
                ...s.udpPorts.map((p) => `${p}/udp (declared)`),
              ].join(', ') || '-'
            }; published on every node: ${s.published.join(', ') || '-'}`,
            `  networks: ${s.networks.join(', ')}`,
            `  HTTP hosts: ${[`${s.dnsName}/`, ...s.hosts].join(', ')}${
              s.http
                ? `; ${s.http.requests} requests here (${Object.entries(s.http.statuses)
                    .filter(([, n]) => n > 0)
                    .map(([k, n]) => `${k} ${n}`)
                    .join(', ')})`
                : ''
            }`,
            `  endpoints seen from node ${routes.node}: ${s.endpoints.length === 0 ? 'none ready' : ''}`,
            ...s.endpoints.map(
              (e) =>
                `    ${e.task}  node ${e.node}  ${e.host}  ports ${[...e.ports, ...e.udpPorts.map((p) => `${p}/udp`)].join(', ') || '-'}${e.local ? '  (this node)' : ''}`,
            ),
          ].join('\n'),
        ),
        ...routes.notServed.map((n) => `not served here: ${n.address}: ${n.reason}`),
      ].join('\n'),
  );
  return 0;
}

export async function ps(args: string[]): Promise<number> {
  const { values, positionals } = parse('ps', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    ...LISTING_OPTIONS,
    all: { type: 'boolean', short: 'a' },
  });
  const dataDir = dataDirOf(values);
  const [name] = positionals;
  const tasks = (await callAgent(dataDir, 'GET /v1/tasks', { name })).filter(
    (t) => values.all || t.desired === 'running',
  );
  printListing(values, tasks, {
    id: (t) => t.id,
    shown: (t) => ({ ...t, ports: t.ports.map(taskPortText) }),
    table: (tasks) =>
      table(
        [
          'TASK',
          'SERVICE',
          'IMAGE',
          'VERSION',
          'NODE',
          'DESIRED',
          'STATE',
          'READY',
          'SINCE',
          'PORTS',
          'REASON',
        ],
        tasks.map((t) => [
          t.id,
          t.service,
          shorten(t.image ?? '-', 40),
          t.currentVersion !== null && t.serviceVersion !== t.currentVersion
            ? `${t.serviceVersion} (now ${t.currentVersion})`
            : String(t.serviceVersion),
          (t.nodeAddress ? `${t.node} (${hostOf(t.nodeAddress)})` : (t.node ?? '-')) +
            (t.pinnedBy ? ` [volume ${t.pinnedBy.volume}]` : ''),
          t.desired,
          [
            t.state,
            t.exitCode !== null && t.state !== 'running' ? `(exit ${t.exitCode})` : '',
            t.restarts > 0 ? `(${t.restarts} restarts)` : '',
          ]
            .filter(Boolean)
            .join(' '),
          t.ready === null ? '-' : t.ready ? 'ready' : 'not ready',
          t.since ? ago(t.since) : '-',
          t.ports.map(taskPortText).join(', ') || '-',
          [t.reason, t.probe && `probe: ${t.probe}`].filter(Boolean).join('; '),
        ]),
      ),
  });
  return 0;
}

export function service(args: string[]): Promise<number> {
  return runSubcommand('service', args, { update: serviceUpdate }, SERVICE_COMMANDS);
}

function pullOption(value: unknown): PullPolicy | undefined {
  if (value === undefined) return undefined;
  if (value === 'always' || value === 'missing' || value === 'never') return value;
  throw new UsageError(`--pull takes always, missing or never, got "${String(value)}"`);
}

/** `mesh service update SERVICE`: as `docker service update`, rolled out with progress. */
async function serviceUpdate(args: string[]): Promise<number> {
  const { values, positionals } = parse('service update', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    image: { type: 'string' },
    'env-add': { type: 'string', multiple: true },
    'env-rm': { type: 'string', multiple: true },
    replicas: { type: 'string' },
    pull: { type: 'string' },
    force: { type: 'boolean' },
    detach: { type: 'boolean', short: 'd' },
    timeout: { type: 'string' },
  });
  const [name] = positionals;
  if (!name)
    throw new UsageError('service update needs a service: mesh service update SERVICE --image I');
  const envAdd: Record<string, string> = {};
  for (const item of (values['env-add'] as string[] | undefined) ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env-add takes NAME=VALUE, got "${item}"`);
    envAdd[item.slice(0, eq)] = item.slice(eq + 1);
  }
  const replicas = values.replicas === undefined ? undefined : Number(values.replicas);
  if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 0))
    throw new UsageError(`--replicas takes a whole number, got "${values.replicas}"`);
  const pull = pullOption(values.pull);
  const changes = {
    image: values.image as string | undefined,
    envAdd,
    envRm: (values['env-rm'] as string[] | undefined) ?? [],
    replicas,
    pull,
    force: Boolean(values.force),
  };
  if (
    changes.image === undefined &&
    Object.keys(envAdd).length === 0 &&
    changes.envRm.length === 0 &&
    replicas === undefined &&
    pull === undefined &&
    !changes.force
  )
    throw new UsageError(
      'service update: nothing to change; give --image, --env-add, --env-rm, --replicas, --pull or --force',
    );
  const timeoutMs = durationOf(values.timeout, '--timeout') ?? 300_000;
  const dataDir = dataDirOf(values);
  const result = await callAgent(dataDir, 'POST /v1/services/update', {
    service: name,
    ...changes,
  });
  if (values.json) print(true, result, () => '');
  else
    process.stderr.write(
      `mesh: ${result.change} ${result.id}${result.version ? ` (version ${result.version})` : ''}\n`,
    );
  if (values.detach || result.change === 'unchanged') return 0;
  const stack = result.id.split('.')[0] as string;
  return followRollout(dataDir, stack, new Map([[result.id, result.version]]), timeoutMs);
}

export function volume(args: string[]): Promise<number> {
  return runSubcommand('volume', args, { ls: volumes }, VOLUME_COMMANDS);
}

async function volumes(args: string[]): Promise<number> {
  const { values } = parse('volume ls', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const rows = await callAgent(dataDirOf(values), 'GET /v1/volumes', {});
  print(Boolean(values.json), rows, () =>
    table(
      ['VOLUME', 'NODE', 'NODE STATUS', 'SERVICES', 'SINCE'],
      rows.map((r) => [
        r.name,
        r.nodeAddress ? `${r.node} (${hostOf(r.nodeAddress)})` : r.node,
        r.nodeStatus,
        r.services.join(', ') || '-',
        ago(r.pinnedAt),
      ]),
    ),
  );
  return 0;
}

export async function scale(args: string[]): Promise<number> {
  const { values, positionals } = parse('scale', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    detach: { type: 'boolean', short: 'd' },
  });
  if (positionals.length === 0)
    throw new UsageError('scale needs SERVICE=N, e.g. mesh scale web=5');
  const dataDir = dataDirOf(values);
  for (const item of positionals) {
    const eq = item.lastIndexOf('=');
    const replicas = Number(item.slice(eq + 1));
    if (eq <= 0 || !Number.isInteger(replicas) || replicas < 0)
      throw new UsageError(`scale: "${item}" is not SERVICE=N with N a whole number`);
    const result = await callAgent(dataDir, 'POST /v1/services/scale', {
      service: item.slice(0, eq),
      replicas,
    });
    if (values.json) print(true, result, () => '');
    else process.stderr.write(`mesh: ${result.service} scaled to ${result.replicas}\n`);
    if (!values.detach) {
      const stack = result.service.split('.')[0] as string;
      const code = await followRollout(
        dataDir,
        stack,
        new Map([[result.service, undefined]]),
        300_000,
      );
      if (code !== 0) return code;
    }
  }
  return 0;
}

export async function rollback(args: string[]): Promise<number> {
  const { values, positionals } = parse('rollback', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    detach: { type: 'boolean', short: 'd' },
  });
  const [service] = positionals;
  if (!service) throw new UsageError('rollback needs a service: mesh rollback SERVICE');
  const dataDir = dataDirOf(values);
  const result = await callAgent(dataDir, 'POST /v1/services/rollback', { service });
  if (values.json) print(true, result, () => '');
  else process.stderr.write(`mesh: rolling ${result.service} back (version ${result.version})\n`);
  if (values.detach) return 0;
  const stack = result.service.split('.')[0] as string;
  return followRollout(dataDir, stack, new Map([[result.service, result.version]]), 300_000);
}

export async function rm(args: string[]): Promise<number> {
  const { values, positionals } = parse('rm', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    detach: { type: 'boolean', short: 'd' },
  });
  if (positionals.length === 0) throw new UsageError('rm needs a stack name; see "mesh ls"');
  const dataDir = dataDirOf(values);
  for (const stack of positionals) {
    const result = await callAgent(dataDir, 'POST /v1/stacks/rm', { stack });
    if (values.json) print(true, result, () => '');
    else process.stderr.write(`mesh: removing ${result.services.join(', ')}\n`);
    if (values.detach) continue;
    const removed = await follow(
      async () => {
        const left = await callAgent(dataDir, 'GET /v1/tasks', { stack });
        return {
          // Progress, as each task takes up to its stop_grace_period.
          lines: left.length > 0 ? [`  ${plural(left.length, 'task')} still stopping`] : [],
          outcome: left.length === 0 || undefined,
          late: `mesh: ${left.length} tasks of ${stack} still stopping; see "mesh ps -a ${stack}"`,
        };
      },
      { timeoutMs: RM_TIMEOUT_MS, intervalMs: POLL_MS, quiet: Boolean(values.json) },
    );
    if (!removed) return 1;
    process.stderr.write(`mesh: stack ${stack} removed\n`);
  }
  return 0;
}

export async function logs(args: string[]): Promise<number> {
  const { values, positionals } = parse('logs', args, {
    ...DATA_DIR,
    follow: { type: 'boolean', short: 'f' },
    tail: { type: 'string', short: 'n' },
    task: { type: 'string' },
  });
  const [service] = positionals;
  const task = values.task as string | undefined;
  if (!service && !task)
    throw new UsageError(
      'logs needs a service or a task: mesh logs SERVICE [-f], mesh logs --task T',
    );
  const dataDir = dataDirOf(values);
  let cursors: Record<string, string> = {};
  const warned = new Set<string>();
  for (;;) {
    const page = await callAgent(dataDir, 'GET /v1/logs', {
      ...(task ? { task } : { service }),
      tail: String(values.tail ?? 100),
      cursors: JSON.stringify(cursors),
    });
    for (const { task, line } of page.lines) process.stdout.write(`${task} | ${line}\n`);
    for (const u of page.unreachable)
      if (!warned.has(u.task)) {
        warned.add(u.task);
        process.stderr.write(`mesh: no logs from ${u.task}: ${u.reason}\n`);
      }
    cursors = page.cursors;
    if (!values.follow) return 0;
    await sleep(1000);
  }
}

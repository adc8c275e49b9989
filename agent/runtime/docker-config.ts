import type Docker from 'dockerode';
import type { ContainerSettings } from '../../mesh/api/services.js';
import { LABEL } from './docker-labels.js';
import type { TaskSpec } from './runtime.js';

/** Where a container runs: the node (its address, where published ports bind) and its cluster. */
export interface ContainerPlace {
  hostIp: string;
  clusterId: string;
  nodeId: string;
}

/**
 * The engine's create options for a task, pure (as swarmkit's dockerapi builds its container
 * config): tested without an engine. `network` is the first network the container joins (the
 * others are connected after it is created).
 */
export function containerConfig(
  spec: TaskSpec,
  { hostIp, clusterId, nodeId }: ContainerPlace,
  network: string | undefined,
): Docker.ContainerCreateOptions {
  const exposed = Object.fromEntries(spec.ports.map((p) => [`${p.target}/${p.protocol}`, {}]));
  // Only mode-host ports go through the engine; the routing mesh reaches the others directly.
  const bindings = Object.fromEntries(
    spec.ports
      .filter((p) => p.hostPort !== undefined)
      .map((p) => [
        `${p.target}/${p.protocol}`,
        // A host IP in the stack file narrows it (127.0.0.1: the node itself only).
        [{ HostIp: p.hostIp ?? hostIp, HostPort: String(p.hostPort) }],
      ]),
  );
  return {
    name: `mesh-${spec.stack}-${spec.service}-${spec.taskId}`,
    Image: spec.image,
    Cmd: spec.command,
    Entrypoint: spec.entrypoint,
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      ...spec.labels,
      [LABEL.cluster]: clusterId,
      [LABEL.node]: nodeId,
      [LABEL.stack]: spec.stack,
      [LABEL.service]: spec.service,
      [LABEL.task]: spec.taskId,
    },
    ExposedPorts: exposed,
    StopTimeout: Math.ceil(spec.stopGracePeriodMs / 1000),
    ...containerOptions(spec.container ?? {}),
    HostConfig: {
      ...hostOptions(spec.container ?? {}),
      PortBindings: bindings,
      NetworkMode: network,
      Dns: spec.network ? [spec.network.dnsServer] : undefined,
      DnsSearch: spec.network ? [spec.network.search] : undefined,
      // Search the stack's domain first: compose's short names are the common case.
      DnsOptions: spec.network ? ['ndots:1'] : undefined,
      NanoCpus: spec.resources.cpus ? Math.round(spec.resources.cpus * 1e9) : undefined,
      Memory: spec.resources.memoryBytes,
      // mesh restarts tasks itself, per the service's restart policy.
      RestartPolicy: { Name: 'no' },
      Binds: [
        ...(spec.volumes ?? []),
        ...(spec.files ?? []).map((f) => `${f.source}:${f.target}:ro`),
      ],
    },
    Healthcheck: spec.healthcheck && {
      Test: spec.healthcheck.test,
      Interval: spec.healthcheck.intervalMs * 1e6,
      Timeout: spec.healthcheck.timeoutMs * 1e6,
      Retries: spec.healthcheck.retries,
      StartPeriod: spec.healthcheck.startPeriodMs * 1e6,
    },
  };
}

/** Compose's per-container settings, as the engine's create options name them. */
function containerOptions(c: ContainerSettings) {
  return {
    User: c.user,
    WorkingDir: c.workingDir,
    Hostname: c.hostname,
    Domainname: c.domainname,
    Tty: c.tty,
    OpenStdin: c.stdinOpen,
    StopSignal: c.stopSignal,
    // A query parameter of the create call: which variant of the image to run.
    platform: c.platform,
  };
}

function hostOptions(c: ContainerSettings) {
  return {
    Init: c.init,
    ReadonlyRootfs: c.readOnly,
    Tmpfs:
      c.tmpfs &&
      Object.fromEntries(
        c.tmpfs.map((entry) => {
          const at = entry.indexOf(':');
          return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
        }),
      ),
    Ulimits:
      c.ulimits &&
      Object.entries(c.ulimits).map(([Name, { soft, hard }]) => ({ Name, Soft: soft, Hard: hard })),
    CapAdd: c.capAdd,
    CapDrop: c.capDrop,
    Sysctls: c.sysctls,
    ShmSize: c.shmSizeBytes,
    ExtraHosts: c.extraHosts,
    SecurityOpt: c.securityOpt,
    GroupAdd: c.groupAdd,
    PidsLimit: c.pidsLimit,
    OomScoreAdj: c.oomScoreAdj,
    // An empty Type is the engine's default driver.
    LogConfig: c.logging && { Type: c.logging.driver ?? '', Config: c.logging.options },
  };
}

/**
 * Compose's per-container settings, read into what the engine applies. Each reader takes the
 * key's value (already checked for shape by the Compose schema); a value that means nothing
 * throws, and the caller names the key.
 */
import type { ContainerSettings } from '../../mesh/api/services.js';
import { parseBytes } from './values.js';

const text = (value: unknown) => String(value);
const texts = (value: unknown) => (value as unknown[]).map(text);

/** A list of `KEY=VALUE`, or a mapping, as a mapping of strings. */
function pairs(value: unknown): Record<string, string> {
  if (!Array.isArray(value))
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, text(v)]),
    );
  return Object.fromEntries(
    value.map((entry) => {
      const line = text(entry);
      const at = line.indexOf('=');
      if (at <= 0) throw new Error(`"${line}" is not KEY=VALUE`);
      return [line.slice(0, at), line.slice(at + 1)];
    }),
  );
}

/** ulimits: `nofile: 1024` (soft and hard) or `nofile: {soft, hard}`. */
function ulimits(value: unknown): ContainerSettings['ulimits'] {
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([name, limit]) => {
      const { soft, hard } =
        typeof limit === 'number'
          ? { soft: limit, hard: limit }
          : (limit as { soft: number; hard: number });
      const bound = (n: number) => (n === -1 ? Number.POSITIVE_INFINITY : n);
      if (bound(soft) > bound(hard))
        throw new Error(`${name}: soft limit ${soft} is above hard limit ${hard}`);
      return [name, { soft, hard }];
    }),
  );
}

/** extra_hosts: `host:address`, `host=address` or a mapping, as `host:address` lines. */
function extraHosts(value: unknown): string[] {
  if (!Array.isArray(value))
    return Object.entries(value as Record<string, unknown>).flatMap(([host, address]) =>
      (Array.isArray(address) ? address : [address]).map((a) => `${host}:${text(a)}`),
    );
  return value.map((entry) => {
    const line = text(entry);
    const at = line.search(/[=:]/);
    if (at <= 0) throw new Error(`"${line}" is not HOST:ADDRESS`);
    return `${line.slice(0, at)}:${line.slice(at + 1)}`;
  });
}

function logging(value: unknown): ContainerSettings['logging'] {
  const { driver, options } = value as { driver?: string; options?: Record<string, unknown> };
  // Without a driver the engine's default one takes the options (as docker run --log-opt does).
  return {
    ...(driver ? { driver } : {}),
    options: Object.fromEntries(Object.entries(options ?? {}).map(([k, o]) => [k, text(o)])),
  };
}

const flag = (value: unknown) => value === true;

/** The Compose keys applied to each container: the setting each fills, and how it is read. */
export const CONTAINER_KEYS: Record<
  string,
  [keyof ContainerSettings, (value: unknown) => unknown]
> = {
  user: ['user', text],
  working_dir: ['workingDir', text],
  hostname: ['hostname', text],
  domainname: ['domainname', text],
  init: ['init', flag],
  read_only: ['readOnly', flag],
  tmpfs: ['tmpfs', (v) => (Array.isArray(v) ? texts(v) : [text(v)])],
  ulimits: ['ulimits', ulimits],
  cap_add: ['capAdd', texts],
  cap_drop: ['capDrop', texts],
  stop_signal: ['stopSignal', text],
  sysctls: ['sysctls', pairs],
  shm_size: ['shmSizeBytes', (v) => parseBytes(v as string | number)],
  extra_hosts: ['extraHosts', extraHosts],
  security_opt: ['securityOpt', texts],
  tty: ['tty', flag],
  stdin_open: ['stdinOpen', flag],
  group_add: ['groupAdd', texts],
  pids_limit: ['pidsLimit', Number],
  oom_score_adj: ['oomScoreAdj', Number],
  platform: ['platform', text],
  logging: ['logging', logging],
};

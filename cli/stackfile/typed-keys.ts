/**
 * After interpolation every substituted value is a string; Compose and `docker stack deploy`
 * then give the keys that take a number or a boolean their type back (`replicas: ${N:-1}`,
 * `read_only: ${RO}`). This is mesh's table of those keys, by path, `*` for any key or index.
 * Durations and byte sizes stay strings: mesh reads those from strings anyway.
 */
type Convert = (text: string) => unknown;

const BOOLEAN: Convert = (text) => {
  const lower = text.toLowerCase();
  // YAML 1.1's words, which Compose accepts here.
  if (['true', 'yes', 'y', 'on'].includes(lower)) return true;
  if (['false', 'no', 'n', 'off'].includes(lower)) return false;
  return text;
};
const INTEGER: Convert = (text) => (/^[-+]?\d+$/.test(text.trim()) ? Number(text) : text);
const NUMBER: Convert = (text) =>
  text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text;

const SERVICE_KEYS: Array<[string, Convert]> = [
  ['deploy.replicas', INTEGER],
  ['deploy.update_config.parallelism', INTEGER],
  ['deploy.update_config.max_failure_ratio', NUMBER],
  ['deploy.rollback_config.parallelism', INTEGER],
  ['deploy.rollback_config.max_failure_ratio', NUMBER],
  ['deploy.restart_policy.max_attempts', INTEGER],
  ['deploy.placement.max_replicas_per_node', INTEGER],
  ['deploy.resources.limits.pids', INTEGER],
  ['healthcheck.retries', INTEGER],
  ['healthcheck.disable', BOOLEAN],
  ['ports.*.target', INTEGER],
  ['ports.*.published', INTEGER],
  ['secrets.*.mode', INTEGER],
  ['configs.*.mode', INTEGER],
  ['volumes.*.read_only', BOOLEAN],
  ['volumes.*.volume.nocopy', BOOLEAN],
  ['ulimits.*', INTEGER],
  ['ulimits.*.soft', INTEGER],
  ['ulimits.*.hard', INTEGER],
  ['cpu_count', INTEGER],
  ['cpu_percent', NUMBER],
  ['cpu_shares', INTEGER],
  ['cpu_period', INTEGER],
  ['cpu_quota', INTEGER],
  ['cpus', NUMBER],
  ['mem_swappiness', INTEGER],
  ['oom_score_adj', INTEGER],
  ['pids_limit', INTEGER],
  ['scale', INTEGER],
  ['init', BOOLEAN],
  ['oom_kill_disable', BOOLEAN],
  ['privileged', BOOLEAN],
  ['read_only', BOOLEAN],
  ['stdin_open', BOOLEAN],
  ['tty', BOOLEAN],
  ['depends_on.*.required', BOOLEAN],
  ['depends_on.*.restart', BOOLEAN],
];

const TOP_LEVEL_KEYS: Array<[string, Convert]> = [
  ['networks.*.external', BOOLEAN],
  ['networks.*.internal', BOOLEAN],
  ['networks.*.attachable', BOOLEAN],
  ['networks.*.enable_ipv6', BOOLEAN],
  ['volumes.*.external', BOOLEAN],
  ['secrets.*.external', BOOLEAN],
  ['configs.*.external', BOOLEAN],
];

const TYPED: Array<[string[], Convert]> = [
  ...SERVICE_KEYS.map(([path, convert]): [string[], Convert] => [
    ['services', '*', ...path.split('.')],
    convert,
  ]),
  ...TOP_LEVEL_KEYS.map(([path, convert]): [string[], Convert] => [path.split('.'), convert]),
];

/**
 * An interpolated string at `path`, with the type its key takes. A value that is not one (`yes`
 * for replicas) stays a string: the schema then names the key, file and line.
 */
export function typedValue(path: ReadonlyArray<string | number>, text: string): unknown {
  for (const [pattern, convert] of TYPED)
    if (
      pattern.length === path.length &&
      pattern.every((step, i) => step === '*' || step === String(path[i]))
    )
      return convert(text);
  return text;
}

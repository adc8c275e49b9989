/**
 * Every Compose key is either supported or reported as ignored with a reason: never silently
 * dropped. This is that list of reasons; a key of the schema not named here is supported.
 */

const SINGLE_HOST = 'a single-host setting; mesh schedules across machines';
const NETWORK_MODE = 'containers join their stack networks; services are reached by name';
const NOT_YET = 'not supported by mesh yet';

/** Top-level keys. */
export const IGNORED_TOP: Record<string, string> = {
  version: 'obsolete in the Compose specification',
  include: 'merge the files first (docker compose config)',
};

/** Service keys. */
export const IGNORED_SERVICE: Record<string, string> = {
  build: 'mesh deploys images: build and push them first',
  container_name: 'replicas are named by mesh',
  network_mode: NETWORK_MODE,
  links: 'services of a network reach each other by name already',
  external_links: NETWORK_MODE,
  dns: 'containers use the cluster DNS',
  dns_opt: 'containers use the cluster DNS',
  dns_search: 'containers use the cluster DNS',
  privileged: 'not allowed for mesh tasks',
  devices: SINGLE_HOST,
  device_cgroup_rules: SINGLE_HOST,
  cgroup_parent: SINGLE_HOST,
  ipc: SINGLE_HOST,
  pid: SINGLE_HOST,
  userns_mode: SINGLE_HOST,
  volumes_from: SINGLE_HOST,
  profiles: 'every service of the file is deployed',
  scale: 'use deploy.replicas',
  extends: 'merge the files first',
  storage_opt: NOT_YET,
  isolation: NOT_YET,
  runtime: NOT_YET,
  mac_address: NOT_YET,
  oom_kill_disable: NOT_YET,
  blkio_config: NOT_YET,
  credential_spec: NOT_YET,
  cpu_count: 'use deploy.resources',
  cpu_percent: 'use deploy.resources',
  cpu_period: 'use deploy.resources',
  cpu_quota: 'use deploy.resources',
  cpu_rt_period: 'use deploy.resources',
  cpu_rt_runtime: 'use deploy.resources',
  cpu_shares: 'use deploy.resources',
  cpus: 'use deploy.resources.limits.cpus',
  cpuset: 'use deploy.resources',
  mem_limit: 'use deploy.resources.limits.memory',
  mem_reservation: 'use deploy.resources.reservations.memory',
  mem_swappiness: 'use deploy.resources',
  memswap_limit: 'use deploy.resources',
  develop: 'a development-time setting (compose watch)',
  gpus: 'GPUs are not scheduled by mesh yet',
  post_start: 'lifecycle hooks are not run by mesh yet',
  pre_stop: 'lifecycle hooks are not run by mesh yet',
  attach: 'a setting of compose up; read output with "mesh logs"',
  annotations: NOT_YET,
  label_file: NOT_YET,
  uts: SINGLE_HOST,
};

/** Keys under a service's deploy. */
export const IGNORED_DEPLOY: Record<string, string> = {
  endpoint_mode: 'mesh routes to every ready task itself, through the service address',
  'resources.reservations.devices': NOT_YET,
  'resources.reservations.generic_resources': NOT_YET,
};

/** Supported keys whose meaning in mesh is worth a word (the README's table shows it). */
export const SUPPORTED_NOTES: Record<string, string> = {
  name: 'the stack name, unless one is given to mesh deploy',
  networks: 'a bridge per network on each node; `external: true` is shared by name across stacks',
  volumes:
    'named <stack>_<key>; driver and driver_opts go to the engine; `x-mesh: {scratch: true}` does not pin',
  'services.*.ports':
    'published on every node through the routing mesh (TCP and UDP); `mode: host` on the task node only; a host IP (127.0.0.1) narrows where',
  'services.*.expose':
    "ports the service address answers on, besides the image's and those seen listening",
  'services.*.logging':
    "applied to the container (Docker tasks); options without a driver go to the engine's default",
  'services.*.networks':
    'services reach each other only through a shared network; aliases, addresses and the other entry keys are reported as ignored',
  'services.*.volumes':
    'a named volume pins its service to the node it was made on; bind mounts pass through',
  'services.*.restart': 'mapped onto deploy.restart_policy',
  'services.*.depends_on': 'a task starts once each dependency has a running task',
  'services.*.healthcheck': 'liveness: a task is running once healthy; an unhealthy one restarts',
  'services.*.env_file': 'read by mesh deploy; long syntax with `required: false` too',
  'services.*.stop_grace_period': 'drain, then SIGTERM, this long, then SIGKILL',
  'services.*.pull_policy':
    'missing (the default), always (before each task; a failed pull falls back to the image on the node, as Swarm), never',
  'services.*.labels': 'on each container',
  'services.*.deploy.labels': 'on the service',
  'services.*.deploy.mode': 'replicated or global; jobs are refused (not supported yet)',
  'services.*.deploy.placement':
    'constraints on node.id, hostname, role, platform and labels; spread preferences by node label',
  'services.*.deploy.update_config':
    'rolling updates: parallelism, delay, order (start-first), monitor, max_failure_ratio, failure_action',
  'services.*.deploy.rollback_config': 'how a rollback rolls out, as update_config',
  'services.*.deploy.resources':
    'limits (CPU, memory, pids) and reservations (CPU, memory: the scheduler places by them)',
  secrets:
    'stored sealed in the cluster (file, environment, external); named <stack>_<key> unless `name:`',
  configs: 'stored in the cluster as secrets are (file, environment, content, external)',
  'services.*.secrets': 'files on a tmpfs, /run/secrets/<name> unless target says (uid, gid, mode)',
  'services.*.configs': 'files at their target (uid, gid, mode)',
  'services.*.x-mesh':
    "mesh's own settings: runtime (process), at_most_once, routes (HTTP ingress), readiness, autoscale",
};

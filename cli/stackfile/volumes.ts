/**
 * A stack file's named volumes: the top-level declarations (driver, options, external, and
 * mesh's own `x-mesh: {scratch: true}`), and each service's mounts of them, renamed as Swarm
 * names them (`<stack>_<key>`, unless `name:` or external).
 */
import type { NamedVolume } from '../../mesh/api/services.js';
import type { KeyPath } from './source.js';

type Raw = Record<string, unknown>;

/** A mount's source that names a volume rather than a host path. */
const NAMED = /^[A-Za-z0-9][\w.-]*$/;

export function declaredVolumes(
  stack: string,
  declared: Raw | undefined,
  ignore: (path: KeyPath, reason: string) => void,
): Map<string, NamedVolume> {
  const volumes = new Map<string, NamedVolume>();
  for (const [key, raw] of Object.entries(declared ?? {})) {
    const spec = (raw ?? {}) as Raw;
    const external = spec.external === true || typeof spec.external === 'object';
    const scratch = (spec['x-mesh'] as Raw | undefined)?.scratch === true;
    const volume: NamedVolume = {
      name: typeof spec.name === 'string' ? spec.name : external ? key : `${stack}_${key}`,
      // Data that must not be lost pins its service to the node that has it; an external
      // volume is the user's to place, a scratch one may start empty anywhere.
      pinned: !external && !scratch,
    };
    if (typeof spec.driver === 'string') volume.driver = spec.driver;
    if (spec.driver_opts && typeof spec.driver_opts === 'object')
      volume.driverOpts = Object.fromEntries(
        Object.entries(spec.driver_opts as Raw).map(([k, v]) => [k, String(v)]),
      );
    if (spec.labels !== undefined)
      ignore(['volumes', key, 'labels'], 'mesh labels the volumes it makes itself');
    volumes.set(key, volume);
  }
  return volumes;
}

/**
 * A service's mounts with named volumes renamed, and the named volumes it uses. A volume the
 * file does not declare is used as if declared without settings.
 */
export function serviceVolumes(
  stack: string,
  mounts: string[],
  declared: Map<string, NamedVolume>,
): { mounts: string[]; named: NamedVolume[] } {
  const named = new Map<string, NamedVolume>();
  const renamed = mounts.map((mount) => {
    const [source, ...rest] = mount.split(':');
    if (rest.length === 0 || !source || !NAMED.test(source)) return mount;
    const volume = declared.get(source) ?? { name: `${stack}_${source}`, pinned: true };
    named.set(volume.name, volume);
    return [volume.name, ...rest].join(':');
  });
  return { mounts: renamed, named: [...named.values()] };
}

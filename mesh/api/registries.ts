/**
 * Logins to private registries (`mesh registry login|logout|ls`): the password sealed with the
 * cluster data key as secrets are, opened by a voter only for a node about to pull one of its
 * task's images from that registry.
 */
import { type Check, object, string } from './schema.js';
import { checkSealed, type Sealed } from './secrets.js';

/** Docker Hub, however it is written: what Docker names it in an image reference. */
export const DOCKER_HUB = 'docker.io';
const HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);

/** registries/<host> */
export interface RegistryLogin {
  /** As registryHost names it: lower case, with its port when it has one. */
  host: string;
  username: string;
  sealedPassword: Sealed;
  addedAt: string;
}

const fields: Check = object({
  required: { host: string, username: string, sealedPassword: checkSealed, addedAt: string },
});

export const checkRegistryLogin: Check = (value, path) =>
  fields(value, path) ??
  (normalRegistryHost((value as RegistryLogin).host) === (value as RegistryLogin).host
    ? undefined
    : `${path}.host is not a registry host`);

/** What the Docker Engine is given to pull from a registry. */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^${LABEL}(\\.${LABEL})*(:[0-9]{1,5})?$`);

/**
 * A registry host as given to `mesh registry login` (a name or address, a port, maybe a scheme
 * or a trailing slash as people paste them), as image references name it; undefined when it is
 * not one.
 */
export function normalRegistryHost(given: string): string | undefined {
  const host = given
    .trim()
    .toLowerCase()
    .replace(/^https?:\/\//, '')
    .replace(/\/(v[12]\/?)?$/, '');
  if (!HOST.test(host)) return undefined;
  const port = host.split(':')[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/**
 * The registry an image is pulled from, by Docker's rule: the reference's first part when it
 * has a dot or a port or is localhost (`registry.example.com/team/app`, `127.0.0.1:5000/app`),
 * else Docker Hub (`nginx`, `team/app`).
 */
export function registryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = image.slice(0, slash);
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  return isHost ? (normalRegistryHost(first) ?? first.toLowerCase()) : DOCKER_HUB;
}

/** The server address Docker files a registry's credentials under. */
export function serverAddress(host: string): string {
  return host === DOCKER_HUB ? 'https://index.docker.io/v1/' : host;
}

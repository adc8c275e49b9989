import type { RegistryLogins } from '../cluster/registry-logins.js';
import type { ControlHandlers } from './api.js';

/** `mesh registry ...`: the registry logins' routes of the control API. */
export function registryRoutes(
  logins: RegistryLogins,
): Pick<ControlHandlers, 'POST /v1/registries' | 'GET /v1/registries' | 'POST /v1/registries/rm'> {
  return {
    'POST /v1/registries': (request) => logins.login(request),
    'GET /v1/registries': () => logins.list(),
    'POST /v1/registries/rm': ({ host }) => logins.logout(host),
  };
}

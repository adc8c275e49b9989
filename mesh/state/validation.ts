import { checkAuthority } from '../api/authority.js';
import { type AutoscaleRecord, checkAutoscaleRecord } from '../api/autoscale.js';
import { type CertificateRecord, checkCertificate } from '../api/certificates.js';
import {
  checkNetworkSettings,
  checkServiceAddress,
  contains,
  type NetworkSettings,
  parseCidr,
  type ServiceAddress,
} from '../api/network.js';
import { checkNode } from '../api/nodes.js';
import { checkOperator, type OperatorRecord } from '../api/operators.js';
import { checkRegistryLogin, type RegistryLogin } from '../api/registries.js';
import type { Check } from '../api/schema.js';
import { checkAutolock, checkSecret, checkSecretsKey, type SecretRecord } from '../api/secrets.js';
import { checkService, type ServiceRecord, serviceId } from '../api/services.js';
import { checkStack, type StackRecord } from '../api/stacks.js';
import { checkStatus, checkTask, type TaskRecord, type TaskStatus } from '../api/tasks.js';
import { checkVolume, type VolumeRecord } from '../api/volumes.js';
import type { Kind } from './kinds.js';

const SETTINGS: Record<string, Check> = {
  'settings/network': checkNetworkSettings,
  'settings/secrets-key': checkSecretsKey,
  'settings/ca': checkAuthority,
  'settings/autolock': checkAutolock,
};

const SHAPES: Record<Kind, Check> = {
  nodes: checkNode,
  stacks: checkStack,
  services: checkService,
  tasks: checkTask,
  statuses: checkStatus,
  secrets: checkSecret,
  configs: checkSecret,
  settings: (value, path) => {
    const check = SETTINGS[path];
    return check
      ? check(value, path)
      : `${path}: no such setting (${Object.keys(SETTINGS).join(', ')})`;
  },
  addresses: checkServiceAddress,
  certificates: checkCertificate,
  volumes: checkVolume,
  registries: checkRegistryLogin,
  operators: checkOperator,
  autoscaling: checkAutoscaleRecord,
};

/** What is wrong with a stored object on its own (its shape, and that its ID names it). */
export function checkObject(kind: Kind, id: string, value: unknown): string | undefined {
  const path = `${kind}/${id}`;
  const shape = SHAPES[kind](value, path);
  if (shape) return shape;
  const named = (actual: string) =>
    actual === id ? undefined : `${path}: its ID must be ${actual}, from its value`;
  if (kind === 'stacks') return named((value as StackRecord).name);
  if (kind === 'services') return named(serviceId(value as ServiceRecord));
  if (kind === 'tasks') return named((value as TaskRecord).id);
  if (kind === 'certificates') return named((value as CertificateRecord).host);
  if (kind === 'secrets' || kind === 'configs') return named((value as SecretRecord).name);
  if (kind === 'volumes') return named((value as VolumeRecord).name);
  if (kind === 'registries') return named((value as RegistryLogin).host);
  if (kind === 'operators') return named((value as OperatorRecord).name);
  if (kind === 'autoscaling') return named((value as AutoscaleRecord).service);
  return undefined;
}

/**
 * What is wrong with putting this value, given the state as the command's earlier writes left it:
 * its shape, its ID, and what it refers to (a running task's service, a status's task and node).
 */
export function checkPut(
  kind: Kind,
  id: string,
  value: unknown,
  lookup: (kind: Kind, id: string) => unknown,
  all: (kind: Kind) => Array<[string, unknown]>,
): string | undefined {
  const problem = checkObject(kind, id, value);
  if (problem) return problem;
  if (kind === 'tasks') {
    const task = value as TaskRecord;
    if (task.desired === 'running' && lookup('services', task.serviceId) === undefined)
      return `tasks/${id}: service ${task.serviceId} does not exist`;
  }
  if (kind === 'statuses') {
    const task = lookup('tasks', id) as TaskRecord | undefined;
    if (!task) return `statuses/${id}: no such task`;
    const { nodeId } = value as TaskStatus;
    if (task.nodeId !== nodeId)
      return `statuses/${id}: the task is assigned to ${task.nodeId ?? 'no node'}, not ${nodeId}`;
  }
  if (kind === 'addresses') return addressProblem(id, value as ServiceAddress, lookup, all);
  if (kind === 'services') return referenceProblem(id, value as ServiceRecord, lookup);
  return undefined;
}

/** A service uses only versions of secrets and configs that the state holds. */
function referenceProblem(
  id: string,
  service: ServiceRecord,
  lookup: (kind: Kind, id: string) => unknown,
): string | undefined {
  for (const kind of ['secrets', 'configs'] as const)
    for (const ref of service[kind] ?? []) {
      const record = lookup(kind, ref.source) as SecretRecord | undefined;
      if (!record) return `services/${id}: ${kind}/${ref.source} does not exist`;
      if (!record.versions.some((v) => v.version === ref.version))
        return `services/${id}: ${kind}/${ref.source} has no version ${ref.version}`;
    }
  return undefined;
}

/** A service address belongs to an existing service, lies in the service range, and is its alone. */
function addressProblem(
  id: string,
  { address }: ServiceAddress,
  lookup: (kind: Kind, id: string) => unknown,
  all: (kind: Kind) => Array<[string, unknown]>,
): string | undefined {
  const path = `addresses/${id}`;
  if (lookup('services', id) === undefined) return `${path}: service ${id} does not exist`;
  const settings = lookup('settings', 'network') as NetworkSettings | undefined;
  if (!settings) return `${path}: no service range is set yet (settings/network)`;
  if (!contains(parseCidr(settings.serviceRange), address))
    return `${path}: ${address} is outside the service range ${settings.serviceRange}`;
  for (const [other, value] of all('addresses'))
    if (other !== id && (value as ServiceAddress | undefined)?.address === address)
      return `${path}: ${address} is already the address of service ${other}`;
  return undefined;
}

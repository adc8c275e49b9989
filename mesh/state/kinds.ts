import type { AuthoritySetting } from '../api/authority.js';
import type { AutoscaleRecord } from '../api/autoscale.js';
import type { CertificateRecord } from '../api/certificates.js';
import type { NetworkSettings, ServiceAddress } from '../api/network.js';
import type { NodeRecord } from '../api/nodes.js';
import type { OperatorRecord } from '../api/operators.js';
import type { RegistryLogin } from '../api/registries.js';
import type { AutolockSetting, SecretRecord, SecretsKeySetting } from '../api/secrets.js';
import type { ServiceRecord } from '../api/services.js';
import type { StackRecord } from '../api/stacks.js';
import type { TaskRecord, TaskStatus } from '../api/tasks.js';
import type { VolumeRecord } from '../api/volumes.js';

/** The kinds of object the cluster keeps; each has its own namespace of IDs. */
export const KINDS = [
  'nodes',
  'stacks',
  'services',
  'tasks',
  'statuses',
  'secrets',
  'configs',
  'settings',
  'addresses',
  'certificates',
  'volumes',
  'registries',
  'operators',
  'autoscaling',
] as const;
export type Kind = (typeof KINDS)[number];

/** Each setting (settings/<id>) and what it holds. */
export interface SettingTypes {
  network: NetworkSettings;
  'secrets-key': SecretsKeySetting;
  ca: AuthoritySetting;
  autolock: AutolockSetting;
}

/** What an object of each kind is: every stored one passed that type's checks (validation.ts). */
export interface KindTypes {
  nodes: NodeRecord;
  stacks: StackRecord;
  services: ServiceRecord;
  tasks: TaskRecord;
  statuses: TaskStatus;
  secrets: SecretRecord;
  configs: SecretRecord;
  settings: SettingTypes[keyof SettingTypes];
  addresses: ServiceAddress;
  certificates: CertificateRecord;
  volumes: VolumeRecord;
  registries: RegistryLogin;
  operators: OperatorRecord;
  autoscaling: AutoscaleRecord;
}

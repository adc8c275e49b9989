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
] as const;
export type Kind = (typeof KINDS)[number];

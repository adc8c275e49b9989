/**
 * Small, deterministic checks of stored values: each answers undefined when the value fits, or
 * what is wrong with it, naming the key path. Every replica runs the same checks on the same
 * command, so a value is refused everywhere or nowhere. Keys a check does not name are let
 * through, so that a newer agent's extra fields do not split a cluster during an upgrade.
 */
export type Check = (value: unknown, path: string) => string | undefined;

export const string: Check = (value, path) =>
  typeof value === 'string' ? undefined : `${path} must be a string`;

export const boolean: Check = (value, path) =>
  typeof value === 'boolean' ? undefined : `${path} must be true or false`;

/** A whole number, at least min. */
export const integer =
  (min = 0): Check =>
  (value, path) =>
    Number.isSafeInteger(value) && (value as number) >= min
      ? undefined
      : `${path} must be a whole number >= ${min}`;

/** A finite number >= 0. */
export const amount: Check = (value, path) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? undefined
    : `${path} must be a number >= 0`;

export const oneOf =
  (...allowed: readonly string[]): Check =>
  (value, path) =>
    allowed.includes(value as string) ? undefined : `${path} must be one of ${allowed.join(', ')}`;

export const nullable =
  (check: Check): Check =>
  (value, path) =>
    value === null ? undefined : check(value, path);

export const listOf =
  (item: Check): Check =>
  (value, path) => {
    if (!Array.isArray(value)) return `${path} must be a list`;
    for (const [i, element] of value.entries()) {
      const problem = item(element, `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  };

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An object whose every value passes the check (labels, environment). */
export const mapOf =
  (item: Check): Check =>
  (value, path) => {
    if (!isPlainObject(value)) return `${path} must be an object`;
    for (const [key, element] of Object.entries(value)) {
      const problem = item(element, `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  };

export interface Fields {
  required: Record<string, Check>;
  optional?: Record<string, Check>;
}

/** An object with these fields; an optional one may be missing (or undefined). */
export const object =
  ({ required, optional = {} }: Fields): Check =>
  (value, path) => {
    if (!isPlainObject(value)) return `${path} must be an object`;
    for (const [key, check] of Object.entries(required)) {
      if (!(key in value)) return `${path}.${key} is missing`;
      const problem = check(value[key], `${path}.${key}`);
      if (problem) return problem;
    }
    for (const [key, check] of Object.entries(optional)) {
      if (value[key] === undefined) continue;
      const problem = check(value[key], `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  };

/** Compose's small value languages: durations, byte sizes, shell-like commands, ${VAR}. */

import { typedValue } from './typed-keys.js';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's duration syntax, as compose uses it: "10s", "1m30s", "500ms"; a bare number is seconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') return text * 1000;
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text)
    throw new Error(`"${text}" is not a duration (like 10s, 1m30s, 500ms)`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * (UNIT_MS[p[2] as string] as number), 0);
}

const BYTE_UNITS: Record<string, number> = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "512m", "1g", "300M", "1.5GB", a bare number of bytes. */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt])?b?$/i.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a size (like 512m or 1g)`);
  return Math.round(Number(match[1]) * (BYTE_UNITS[(match[2] ?? 'b').toLowerCase()] as number));
}

/** Splits a command string the way a shell would split words (quotes, backslashes), no expansion. */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word = (word ?? '') + text[++i];
      else word = (word ?? '') + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < text.length) word = (word ?? '') + text[++i];
    else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new Error(`unclosed ${quote} in "${text}"`);
  if (word !== undefined) words.push(word);
  return words;
}

/** A variable the file uses that is not set, and where (an empty string is used). */
export interface UnsetVariable {
  path: Array<string | number>;
  name: string;
}

/**
 * Compose's interpolation in every string of the file: $VAR, ${VAR}, ${VAR:-default},
 * ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ is a literal $. A substituted value takes
 * the type of its key (typedValue); each variable used but not set is added to `unset`.
 */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  unset: UnsetVariable[] = [],
  path: Array<string | number> = [],
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('$')) return value;
    try {
      const text = interpolateString(value, env, (name) => unset.push({ path, name }));
      return typedValue(path, text);
    } catch (error) {
      throw Object.assign(error as Error, { path });
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, unset, [...path, i]));
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, unset, [...path, k])]),
    );
  return value;
}

function interpolateString(
  text: string,
  env: NodeJS.ProcessEnv,
  notSet: (name: string) => void,
): string {
  return text.replace(
    /\$(\$|([A-Za-z_]\w*)|\{([A-Za-z_]\w*)(?:(:?)([-?])([^}]*))?\})/g,
    (_match, _all, bare, name, colon, op, arg) => {
      if (_all === '$') return '$';
      const key = (bare ?? name) as string;
      const value = env[key];
      const missing = value === undefined || (colon === ':' && value === '');
      if (op === '-' && missing) return arg as string;
      if (op === '?' && missing)
        throw new Error(`variable ${key} is required: ${arg || 'not set'}`);
      if (value === undefined && op !== '-') notSet(key);
      return value ?? '';
    },
  );
}

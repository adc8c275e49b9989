/**
 * A stack file's secrets and configs: the values it declares at the top level (read from a file,
 * an environment variable or, for configs, given inline; or named as external), and each
 * service's references to them, short or long syntax.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  defaultTarget,
  type FileRef,
  isValidValueName,
  type ValueKind,
} from '../../mesh/api/secrets.js';
import { type KeyPath, Located } from './source.js';

type Raw = Record<string, unknown>;

/** A value as a deploy sends it: its data (base64), or none for an external one. */
export interface FileValue {
  kind: ValueKind;
  name: string;
  data?: string;
}

const noun = (kind: ValueKind) => (kind === 'secrets' ? 'secret' : 'config');

/**
 * The top-level values of one kind, by the key the file uses. As in Swarm, a value the stack
 * creates is named `<stack>_<key>` unless it says `name:`; an external one is its key (or name).
 */
export function declaredValues(
  kind: ValueKind,
  declared: Raw,
  stack: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  ignore: (path: KeyPath, reason: string) => void,
  refuse: (error: Located) => void,
): DeclaredValues {
  const values = new Map<string, FileValue>();
  const broken = new Set<string>();
  for (const [key, raw] of Object.entries(declared ?? {}))
    try {
      const value = declaredValue(kind, key, (raw ?? {}) as Raw, stack, dir, env, ignore);
      values.set(key, value);
    } catch (error) {
      if (!(error instanceof Located)) throw error;
      // Reported here, once: the services that use it say nothing more of it.
      refuse(error);
      broken.add(key);
    }
  return { values, broken };
}

/** The values a file declares, and those it declares that are refused (reported already). */
export interface DeclaredValues {
  values: Map<string, FileValue>;
  broken: Set<string>;
}

function declaredValue(
  kind: ValueKind,
  key: string,
  spec: Raw,
  stack: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  ignore: (path: KeyPath, reason: string) => void,
): FileValue {
  const path: KeyPath = [kind, key];
  const external = spec.external === true || typeof spec.external === 'object';
  const name = typeof spec.name === 'string' ? spec.name : external ? key : `${stack}_${key}`;
  if (!isValidValueName(name))
    throw new Located(path, `${noun(kind)} name "${name}" must be letters, digits, _, . and -`);
  for (const setting of ['driver', 'driver_opts', 'template_driver', 'labels'])
    if (spec[setting] !== undefined)
      ignore([...path, setting], 'values are kept by mesh, sealed, as they are');
  if (external) return { kind, name };
  let data: Buffer;
  if (typeof spec.file === 'string') {
    try {
      data = readFileSync(resolve(dir, spec.file));
    } catch (error) {
      throw new Located(
        [...path, 'file'],
        `cannot read ${spec.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  } else if (typeof spec.environment === 'string') {
    const value = env[spec.environment];
    if (value === undefined)
      throw new Located([...path, 'environment'], `$${spec.environment} is not set`);
    data = Buffer.from(value);
  } else if (kind === 'configs' && typeof spec.content === 'string') {
    data = Buffer.from(spec.content);
  } else {
    throw new Located(
      path,
      `needs file, environment${kind === 'configs' ? ', content' : ''} or external: true`,
    );
  }
  return { kind, name, data: data.toString('base64') };
}

/** A service's references of one kind, each to a value the file declares. */
export function serviceRefs(
  kind: ValueKind,
  refs: unknown,
  path: KeyPath,
  declared: DeclaredValues,
): FileRef[] {
  return ((refs ?? []) as unknown[]).flatMap((entry, i) => {
    const long = (typeof entry === 'string' ? { source: entry } : entry) as Raw;
    const key = String(long.source);
    if (declared.broken.has(key)) return [];
    const value = declared.values.get(key);
    if (!value)
      throw new Located(
        [...path, kind, i],
        `${noun(kind)} "${key}" is not declared under the top-level ${kind}`,
      );
    const given = typeof long.target === 'string' ? long.target : undefined;
    // A secret's relative target is a name under /run/secrets, as in Swarm.
    const target =
      given === undefined
        ? defaultTarget(kind, key)
        : given.startsWith('/')
          ? given
          : defaultTarget(kind, given);
    // Compose writes modes in octal (0400); YAML 1.2 reads 0400 as four hundred.
    const digits = String(long.mode ?? '444');
    const mode = /^[0-7]+$/.test(digits) ? Number.parseInt(digits, 8) : Number(long.mode);
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777)
      throw new Located([...path, kind, i, 'mode'], 'must be a file mode (0400, 0444, ...)');
    return {
      source: value.name,
      version: 0,
      target,
      uid: String(long.uid ?? '0'),
      gid: String(long.gid ?? '0'),
      mode,
    };
  });
}

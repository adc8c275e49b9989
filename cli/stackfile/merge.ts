/**
 * Several compose files as one, as `docker compose -f a.yml -f b.yml` and `docker stack deploy
 * -c a.yml -c b.yml` merge them (the Compose specification's merge rules): mappings merge key by
 * key, a later scalar wins, sequences append (an entry given again is not doubled), a command, an
 * entrypoint and a healthcheck test are replaced whole, and the keys written either as a list of
 * KEY=VALUE or as a mapping (environment, labels, ...) merge by key. Pure: data in, data out.
 */

type Raw = Record<string, unknown>;

/** Replaced whole by a later file, never appended to (the last key of the path names them). */
const REPLACED = new Set(['command', 'entrypoint', 'test']);

/** Written as KEY=VALUE lists or as mappings: merged by key. */
const KEYED = new Set([
  'environment',
  'labels',
  'annotations',
  'sysctls',
  'args',
  'extra_hosts',
  'driver_opts',
]);

const isMapping = (value: unknown): value is Raw =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** A KEY=VALUE list as a mapping (an entry without = maps to null, as Compose reads it). */
function asMapping(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return Object.fromEntries(
    value.map((entry) => {
      const text = String(entry);
      const eq = text.indexOf('=');
      return eq < 0 ? [text, null] : [text.slice(0, eq), text.slice(eq + 1)];
    }),
  );
}

function mergeValue(base: unknown, over: unknown, key: string): unknown {
  if (over === undefined) return base;
  if (base === undefined || REPLACED.has(key)) return over;
  if (KEYED.has(key)) return mergeValue(asMapping(base), asMapping(over), '');
  if (isMapping(base) && isMapping(over)) {
    const merged: Raw = { ...base };
    for (const [k, v] of Object.entries(over)) merged[k] = mergeValue(base[k], v, k);
    return merged;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const seen = new Set(base.map((entry) => JSON.stringify(entry)));
    return [...base, ...over.filter((entry) => !seen.has(JSON.stringify(entry)))];
  }
  return over;
}

/** The documents merged in order, each later one over the ones before. */
export function mergeCompose(documents: unknown[]): unknown {
  return documents.reduce((merged, next) => mergeValue(merged, next, ''), undefined);
}

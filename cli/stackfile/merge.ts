/**
 * Several compose files as one, as `docker compose -f a.yml -f b.yml` and `docker stack deploy
 * -c a.yml -c b.yml` merge them (the Compose specification's merge rules): mappings merge key by
 * key, a later scalar wins, sequences append (an entry given again is not doubled), a command, an
 * entrypoint and a healthcheck test are replaced whole, the keys written either as a list of
 * KEY=VALUE or as a mapping (environment, labels, ...) merge by key, and a service's volumes,
 * secrets, configs and ports merge by what makes each unique (its target; a port's address,
 * published port, target and protocol): a later entry for the same target replaces the earlier one.
 * Pure: data in, data out.
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

/** A service's lists whose entries are unique by a key: what names an entry in each. */
const UNIQUE: Record<string, (entry: unknown) => string> = {
  volumes: (entry) => {
    if (isMapping(entry)) return String(entry.target);
    const parts = String(entry).split(':');
    return (parts.length === 1 ? parts[0] : parts[1]) ?? '';
  },
  secrets: (entry) => valueTarget(entry, '/run/secrets/'),
  configs: (entry) => valueTarget(entry, '/'),
  ports: (entry) => {
    if (isMapping(entry))
      return [entry.host_ip ?? '', entry.published ?? '', entry.target, entry.protocol ?? 'tcp']
        .map(String)
        .join('|');
    const [spec = '', protocol = 'tcp'] = String(entry).split('/');
    const parts = spec.split(':');
    const target = parts.pop() ?? '';
    const published = parts.pop() ?? '';
    return [parts.join(':'), published, target, protocol].join('|');
  },
};

/** Where a secret or config lands: its target (relative ones under the kind's directory), else its source's name there. */
function valueTarget(entry: unknown, directory: string): string {
  const target = isMapping(entry) ? String(entry.target ?? entry.source) : String(entry);
  return target.startsWith('/') ? target : `${directory}${target}`;
}

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
  const unique = UNIQUE[key];
  if (unique && Array.isArray(base) && Array.isArray(over)) {
    const merged = [...base];
    for (const entry of over) {
      const at = merged.findIndex((earlier) => unique(earlier) === unique(entry));
      if (at < 0) merged.push(entry);
      else merged[at] = mergeValue(merged[at], entry, '');
    }
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

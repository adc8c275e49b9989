/**
 * What every listing (ls, ps, node ls) takes besides --json, as docker's do: -q for IDs only,
 * --filter KEY=VALUE to keep some rows, --format with a small template. Rows are the listing's
 * JSON rows; keys are their fields, matched without regard to case.
 */
import { type Options, UsageError } from './args.js';

export const LISTING_OPTIONS: Options = {
  quiet: { type: 'boolean', short: 'q' },
  filter: { type: 'string', multiple: true },
  format: { type: 'string' },
};

type Row = Record<string, unknown>;

/** The row's field named `key`, case aside (`Name` is `name`); undefined when it has none. */
function field(row: Row, key: string): unknown {
  const found = Object.keys(row).find((k) => k.toLowerCase() === key.toLowerCase());
  return found === undefined ? undefined : row[found];
}

/** Whether a field's value matches: equal as text; a list holding it; a map with KEY or KEY=VALUE. */
function matches(value: unknown, wanted: string): boolean {
  if (Array.isArray(value)) return value.some((item) => String(item) === wanted);
  if (value !== null && typeof value === 'object') {
    const eq = wanted.indexOf('=');
    const entries = Object.entries(value as Row);
    return eq < 0
      ? entries.some(([k]) => k === wanted)
      : entries.some(([k, v]) => k === wanted.slice(0, eq) && String(v) === wanted.slice(eq + 1));
  }
  return String(value) === wanted;
}

/**
 * The rows every --filter keeps (several of one key: any of them, as docker's filters). A key no
 * row has is refused, naming the keys there are.
 */
export function filterRows<T extends object>(
  rows: T[],
  filters: string[],
  shown: (row: T) => object = (row) => row,
): T[] {
  const wanted = new Map<string, string[]>();
  for (const filter of filters) {
    const eq = filter.indexOf('=');
    if (eq <= 0) throw new UsageError(`--filter takes KEY=VALUE, got "${filter}"`);
    const key = filter.slice(0, eq);
    wanted.set(key, [...(wanted.get(key) ?? []), filter.slice(eq + 1)]);
  }
  const [first] = rows.map(shown);
  if (first)
    for (const key of wanted.keys())
      if (field(first as Row, key) === undefined)
        throw new UsageError(
          `--filter: no field "${key}"; the fields are ${Object.keys(first).join(', ')}`,
        );
  return rows.filter((row) =>
    [...wanted].every(([key, values]) =>
      values.some((value) => matches(field(shown(row) as Row, key), value)),
    ),
  );
}

/**
 * A row through a template: `{{.Field}}` is the field as text (a list joined by commas, a map as
 * KEY=VALUE), `{{json .Field}}` and `{{json .}}` as JSON; `\t` and `\n` are a tab and a newline.
 */
export function formatRow(template: string, row: object): string {
  const text = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return text.replace(
    /\{\{\s*(json\s+)?\.([\w]*)\s*\}\}/g,
    (_, json: string | undefined, key: string) => {
      const value = key === '' ? row : field(row as Row, key);
      if (value === undefined)
        throw new UsageError(
          `--format: no field "${key}"; the fields are ${Object.keys(row).join(', ')}`,
        );
      if (json) return JSON.stringify(value);
      if (Array.isArray(value)) return value.join(',');
      if (value !== null && typeof value === 'object')
        return Object.entries(value as Row)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(',');
      return String(value ?? '');
    },
  );
}

/**
 * Prints a listing: as JSON (--json), IDs (-q), each row through --format, or the table; after
 * --filter. `json` is what --json prints of the kept rows (ls nests them in their stacks); `shown`
 * is a row as --filter and --format see it, where a field is shown as text (ports) but is an
 * object in JSON.
 */
export function printListing<T extends object>(
  values: Record<string, unknown>,
  rows: T[],
  options: {
    id: (row: T) => string;
    table: (rows: T[]) => string;
    json?: (rows: T[]) => unknown;
    shown?: (row: T) => object;
  },
): void {
  const shown = options.shown ?? ((row: T) => row);
  const kept = filterRows(rows, (values.filter as string[] | undefined) ?? [], shown);
  let out: string;
  if (values.json) out = JSON.stringify(options.json ? options.json(kept) : kept, null, 2);
  else if (values.quiet) out = kept.map(options.id).join('\n');
  else if (typeof values.format === 'string')
    out = kept.map((row) => formatRow(values.format as string, shown(row))).join('\n');
  else out = options.table(kept);
  if (out !== '') process.stdout.write(`${out}\n`);
}

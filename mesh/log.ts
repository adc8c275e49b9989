import { type DestinationStream, destination, type Logger, pino } from 'pino';

export type { Logger };

/** json: one object per line, for machines; pretty: a line per event, for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  nodeId: string;
  level?: string;
  /** Default: pretty when standard error is a terminal, json otherwise. */
  format?: LogFormat;
  destination?: DestinationStream;
}

/** Every line a node writes carries its node ID, so logs of many nodes can be merged. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.MESH_LOG_LEVEL ?? 'info';
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const out =
    options.destination ??
    (format === 'pretty'
      ? { write: (line: string) => process.stderr.write(prettyLine(line)) }
      : destination(2));
  return pino({ level, base: { node: options.nodeId } }, out);
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** A pino JSON line as `HH:MM:SS.mmm LEVEL message key=value ...` (the node ID left out). */
export function prettyLine(json: string): string {
  const { level, time, msg, node: _node, ...fields } = JSON.parse(json) as Record<string, unknown>;
  const at = new Date(time as number).toISOString().slice(11, 23);
  const words = Object.entries(fields).map(([key, value]) => {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return `${key}=${typeof value === 'string' && /[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
  });
  const name = (LEVELS[level as number] ?? String(level)).padEnd(5);
  return `${[at, name, msg, ...words].filter((w) => w !== undefined && w !== '').join(' ')}\n`;
}

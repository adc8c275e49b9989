import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../mesh/log.js';

export interface LogLine {
  level: number;
  msg: string;
  node: string;
  [field: string]: unknown;
}

export interface CapturedLogs {
  log: Logger;
  lines: LogLine[];
  /** Resolves with the first line (already written or yet to come) matching, or rejects at the deadline. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** A logger whose JSON lines are kept for assertions: refusals must be logged, not just happen. */
export function captureLogs(nodeId: string): CapturedLogs {
  const lines: LogLine[] = [];
  const waiters = new Set<(line: LogLine) => void>();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const waiter of waiters) waiter(line);
      }
      done();
    },
  });
  const log = createLogger({ nodeId, level: 'debug', destination: sink });
  const waitFor = (match: (line: LogLine) => boolean, timeoutMs = 5000) =>
    new Promise<LogLine>((resolve, reject) => {
      const found = lines.find(match);
      if (found) {
        resolve(found);
        return;
      }
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (line: LogLine) => {
        if (!match(line)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(line);
      };
      waiters.add(check);
    });
  return { log, lines, waitFor };
}

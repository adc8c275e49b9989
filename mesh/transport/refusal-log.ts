import type { Logger } from 'pino';
import { splitHostPort } from './address.js';

const WINDOW_MS = 60_000;
/** Past this many addresses in a window, new ones share one count (a scan from many addresses). */
const MAX_TRACKED = 4096;
const OTHERS = 'other addresses';

interface Window {
  start: number;
  logged: number;
  leftOut: number;
}

/**
 * The log of refused connections, a few lines a minute per remote address: a port scanner or a
 * node that keeps redialling with a revoked certificate would otherwise write a line per attempt.
 * Past the limit, refusals are counted, and the count is logged once the minute is over (at the
 * next refusal from anywhere).
 */
export class RefusalLog {
  private readonly windows = new Map<string, Window>();
  private lastSweep: number;

  constructor(
    private readonly log: Logger,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSweep = now();
  }

  /** Logs a refusal of `remote` (host:port) with its fields, unless its address is over the limit. */
  warn(remote: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.lastSweep >= WINDOW_MS) this.sweep(now);
    const { host } = splitHostPort(remote);
    const key = this.windows.has(host) || this.windows.size < MAX_TRACKED ? host : OTHERS;
    let window = this.windows.get(key);
    if (window && now - window.start >= WINDOW_MS) {
      this.ended(key, window);
      window = undefined;
    }
    if (!window) {
      window = { start: now, logged: 0, leftOut: 0 };
      this.windows.set(key, window);
    }
    if (window.logged < this.perMinute) {
      window.logged += 1;
      this.log.warn({ remote, ...fields }, message);
    } else window.leftOut += 1;
  }

  /** Ends the windows that are over. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [host, window] of this.windows)
      if (now - window.start >= WINDOW_MS) this.ended(host, window);
  }

  /** A window is over: how many refusals it left out is logged. */
  private ended(host: string, window: Window): void {
    this.windows.delete(host);
    if (window.leftOut > 0)
      this.log.warn(
        { host, leftOut: window.leftOut, perMinute: this.perMinute },
        'more refused connections from this address were left out of the log',
      );
  }
}

import type { Logger } from 'pino';

const WINDOW_MS = 60_000;
/** Past this many sources and causes in a window, new ones share one count (a scan from many). */
const MAX_TRACKED = 4096;
const OTHERS = 'other sources';

interface Window {
  start: number;
  logged: number;
  leftOut: number;
  source: string;
  about: string;
}

/**
 * Warnings that a peer or a client can cause, a few lines a minute (or another window) per source
 * and cause: a port scanner, a node that keeps redialling with a revoked certificate, a member
 * sending what its role does not allow, or a replica failing every request of a burst would
 * otherwise write a line per attempt. Past the limit, lines are counted, and the count is logged
 * once the window is over (at the next warning from anywhere).
 */
export class LimitedLog {
  private readonly windows = new Map<string, Window>();
  private lastSweep: number;

  constructor(
    private readonly log: Logger,
    private readonly perWindow: number,
    private readonly now: () => number = Date.now,
    private readonly windowMs = WINDOW_MS,
  ) {
    this.lastSweep = now();
  }

  /**
   * Logs a warning about `source` (an address, a node) with its fields, unless that source has
   * had its lines of this message this window.
   */
  warn(source: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.lastSweep >= this.windowMs) this.sweep(now);
    const wanted = `${source}\n${message}`;
    const key = this.windows.has(wanted) || this.windows.size < MAX_TRACKED ? wanted : OTHERS;
    let window = this.windows.get(key);
    if (window && now - window.start >= this.windowMs) {
      this.ended(key, window);
      window = undefined;
    }
    if (!window) {
      window = {
        start: now,
        logged: 0,
        leftOut: 0,
        source: key === OTHERS ? OTHERS : source,
        about: message,
      };
      this.windows.set(key, window);
    }
    if (window.logged < this.perWindow) {
      window.logged += 1;
      this.log.warn(fields, message);
    } else window.leftOut += 1;
  }

  /** Ends the windows that are over. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, window] of this.windows)
      if (now - window.start >= this.windowMs) this.ended(key, window);
  }

  /** A window is over: how many lines it left out is logged. */
  private ended(key: string, window: Window): void {
    this.windows.delete(key);
    if (window.leftOut > 0)
      this.log.warn(
        {
          source: window.source,
          about: window.about,
          leftOut: window.leftOut,
          perWindow: this.perWindow,
          windowSeconds: this.windowMs / 1000,
        },
        'more lines like this were left out of the log',
      );
  }
}

import type { Logger } from '../mesh/log.js';

/**
 * The agent's parts as they start, to be stopped in exactly the reverse order: a part is listed
 * once its start succeeded, so a start that fails half-way stops what came before it and nothing
 * else. A stop that fails is logged, and the others still stop.
 */
export class Lifecycle {
  private readonly stops: Array<{ part: string; stop: () => unknown }> = [];

  constructor(private readonly log: Logger) {}

  /** Starts a part (it may be nothing to start: only a stop to remember) and lists its stop. */
  async start(part: string, start: () => unknown, stop: () => unknown): Promise<void> {
    await start();
    this.stops.push({ part, stop });
  }

  /** Lists the stop of a part already running (made running by its factory). */
  add(part: string, stop: () => unknown): void {
    this.stops.push({ part, stop });
  }

  /** Stops every part started, last first. */
  async stopAll(): Promise<void> {
    for (let next = this.stops.pop(); next; next = this.stops.pop()) {
      try {
        await next.stop();
      } catch (error) {
        this.log.warn({ part: next.part, err: error }, 'a part of the agent did not stop cleanly');
      }
    }
  }
}

import { everyShared } from '../mesh/shared-interval.js';

/**
 * Runs a task every intervalMs (on the timer every loop of that period shares), never two runs
 * at once (a slow run makes the next tick wait); a failure goes to onError and the task is tried
 * again at the next tick. Returns the stop.
 */
export function repeatOneAtATime(
  intervalMs: number,
  task: () => Promise<void>,
  onError: (error: Error) => void,
): () => void {
  let running = false;
  return everyShared(intervalMs, () => {
    if (running) return;
    running = true;
    task()
      .catch(onError)
      .finally(() => {
        running = false;
      });
  });
}

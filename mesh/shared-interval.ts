/** The callbacks of one period, called from one timer; it is stopped when the last one leaves. */
interface Group {
  timer: NodeJS.Timeout;
  callbacks: Set<() => void>;
}

const groups = new Map<number, Group>();

/**
 * Calls the callback every periodMs from a timer shared by every callback of that period, until
 * the returned function is called. An idle agent holds a channel per peer and direction, each
 * looking at its peer every second: with a timer each, every one of them woke the process on its
 * own (each wake-up costs as much as the little work it does). The timer keeps no process alive.
 */
export function everyShared(periodMs: number, callback: () => void): () => void {
  let group = groups.get(periodMs);
  if (!group) {
    const callbacks = new Set<() => void>();
    const timer = setInterval(() => {
      for (const call of [...callbacks]) call();
    }, periodMs);
    timer.unref();
    group = { timer, callbacks };
    groups.set(periodMs, group);
  }
  const joined = group;
  joined.callbacks.add(callback);
  return () => {
    if (!joined.callbacks.delete(callback) || joined.callbacks.size > 0) return;
    clearInterval(joined.timer);
    groups.delete(periodMs);
  };
}

/**
 * What a test or benchmark made that must not outlive it (agents, addresses, rules, containers),
 * released newest first when the process is interrupted (SIGINT, SIGTERM, SIGHUP: its terminal
 * closed) before its own cleanup ran: one set of signal handlers for every harness. (No ava here:
 * benchmarks use it too.)
 */
import { INTERRUPT_EXIT_CODES, killChildren } from '../../examples/local-cluster.js';

type Interrupt = keyof typeof INTERRUPT_EXIT_CODES;
const releases = new Set<() => Promise<void>>();
let installed = false;

async function interrupted(signal: Interrupt): Promise<void> {
  console.error(`${signal}: stopping what was started`);
  // The run's own steps fail as its agents go (a request to one cut off): that is the interrupt
  // at work, said in a line, and the releases go on to the end instead of a stack trace.
  process.on('uncaughtException', (error) =>
    console.error(`${signal}: a step stopped with it: ${error.message}`),
  );
  for (const release of [...releases].reverse())
    await release().catch((error: Error) => console.error(`cleanup failed: ${error.message}`));
  killChildren();
  process.exit(INTERRUPT_EXIT_CODES[signal]);
}

/** Runs `release` if the process is interrupted; the returned function takes it back (done). */
export function onInterrupt(release: () => Promise<void>): () => void {
  releases.add(release);
  if (!installed) {
    installed = true;
    for (const signal of Object.keys(INTERRUPT_EXIT_CODES) as Interrupt[])
      process.once(signal, () => void interrupted(signal));
  }
  return () => releases.delete(release);
}

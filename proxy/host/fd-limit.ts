import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface FdLimit {
  soft: number;
  hard: number;
}

/** The open-files limits in a `/proc/<pid>/limits` text ("unlimited" as the largest number). */
export function parseFdLimit(limits: string): FdLimit | undefined {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (!match) return undefined;
  const value = (text: string) =>
    text === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number.parseInt(text, 10);
  return { soft: value(match[1] as string), hard: value(match[2] as string) };
}

export function fdLimit(): FdLimit | undefined {
  return parseFdLimit(readFileSync('/proc/self/limits', 'utf8'));
}

/**
 * Raises this process's soft limit on open files to its hard limit (systemd's 1024 soft limit is
 * a few hundred clients of the ingress), with util-linux's prlimit, as Node has no setrlimit.
 * Answers the limit in force after, and why it could not be raised if it could not.
 */
export async function raiseFdLimit(): Promise<{ limit: FdLimit | undefined; failure?: string }> {
  const before = fdLimit();
  if (!before || before.soft >= before.hard) return { limit: before };
  try {
    await run('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`]);
  } catch (error) {
    return { limit: before, failure: (error as Error).message };
  }
  return { limit: fdLimit() };
}

/**
 * How many client connections one listener of the data plane may hold, out of the open-files
 * limit: half of it, so that the agent (its cluster links, its engine, its files) always has room
 * and a flood of clients is refused at accept rather than failing everything else with EMFILE.
 */
export function connectionBudget(limit: FdLimit | undefined): number {
  return Math.max(64, Math.floor((limit?.soft ?? 1024) / 2));
}

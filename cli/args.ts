import { networkInterfaces } from 'node:os';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultDataDir } from '../agent/datadir.js';
import { parseDuration } from './stackfile/values.js';

/** A mistake of the user's: printed as one line, without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const DATA_DIR: Options = { 'data-dir': { type: 'string' } };
export const JSON_OUTPUT: Options = { json: { type: 'boolean' } };

/** parseArgs, with its errors turned into one-line usage errors naming the command. */
export function parse(command: string, args: string[], options: Options) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${command}: ${(error as Error).message}`);
  }
}

export function dataDirOf(values: Record<string, unknown>): string {
  return typeof values['data-dir'] === 'string' ? values['data-dir'] : defaultDataDir();
}

/** --label k=v, repeatable. */
export function labelsOf(values: Record<string, unknown>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const label of (values.label as string[] | undefined) ?? []) {
    const eq = label.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label needs KEY=VALUE, got "${label}"`);
    labels[label.slice(0, eq)] = label.slice(eq + 1);
  }
  return labels;
}

/** The first non-internal IPv4 address, which is what a one-NIC machine wants advertised. */
export function defaultAdvertise(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

/** A duration flag (10s, 1m30s, 500ms), or undefined when not given. */
export function durationOf(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(String(value));
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

export function portOf(values: Record<string, unknown>, fallback: number): number {
  if (values.port === undefined) return fallback;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--port needs a port number (1-65535), got "${String(values.port)}"`);
  }
  return port;
}

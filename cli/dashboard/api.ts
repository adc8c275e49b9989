/**
 * What the dashboard's page may ask: the control API routes it shows and acts through (never
 * tokens, backups, keys or operators), and a deploy of a pasted stack file, read by the same code
 * as `mesh deploy` so that its mistakes keep their line and column.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeployResponse, RouteName } from '../../agent/control/api.js';
import { UserError } from '../../mesh/user-error.js';
import {
  AgentUnavailableError,
  callAgent,
  NoAgentError,
  RefusedError,
  UnknownOutcomeError,
} from '../control-client.js';
import { readStackFile, StackFileError } from '../stackfile/stack-file.js';

export const API_ROUTES: ReadonlySet<RouteName> = new Set<RouteName>([
  'GET /v1/status',
  'GET /v1/ca',
  'GET /v1/nodes',
  'GET /v1/node',
  'GET /v1/placement',
  'GET /v1/stacks',
  'GET /v1/service',
  'GET /v1/tasks',
  'GET /v1/logs',
  'GET /v1/routes',
  'GET /v1/traffic',
  'GET /v1/values',
  'GET /v1/volumes',
  'GET /v1/events',
  'POST /v1/services/scale',
  'POST /v1/services/rollback',
  'POST /v1/node',
  'POST /v1/node/rm',
  'POST /v1/stacks/rm',
  'POST /v1/values',
  'POST /v1/values/update',
  'POST /v1/values/rm',
]);

/** The status a failure of the agent call stands for, and what the page says of it. */
export function failureOf(error: unknown): { status: number; message: string } {
  const message = (error as Error).message;
  if (error instanceof NoAgentError) return { status: 502, message: 'no mesh daemon on this node' };
  if (error instanceof AgentUnavailableError) return { status: 503, message };
  if (error instanceof UnknownOutcomeError) return { status: 504, message };
  if (error instanceof RefusedError) return { status: 400, message };
  if (error instanceof UserError) return { status: 502, message };
  return { status: 500, message };
}

/** A deploy from the page: the file's text, the stack's name, and whether only to look. */
export interface DeployAsked {
  stack: string;
  text: string;
  dryRun: boolean;
}

/** What the page shows of a deploy: the file's problems, or what changed (or would). */
export type DeployAnswer =
  | { problems: Array<{ line: number; column: number; path: string; message: string }> }
  | (DeployResponse & { ignored: Array<{ line: number; path: string; reason: string }> });

/** The file name a pasted stack file is read as: what its problems are said against. */
const PASTED = 'compose.yml';

export async function deployFromText(dataDir: string, asked: DeployAsked): Promise<DeployAnswer> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-dashboard-'));
  try {
    writeFileSync(join(dir, PASTED), String(asked.text ?? ''));
    let stackFile: ReturnType<typeof readStackFile>;
    try {
      stackFile = readStackFile(join(dir, PASTED), String(asked.stack ?? '') || undefined);
    } catch (error) {
      if (!(error instanceof StackFileError)) throw error;
      return {
        problems: error.problems.map((p) => ({
          line: p.line,
          column: p.column,
          path: p.path.map(String).join('.'),
          message: p.message,
        })),
      };
    }
    const response = await callAgent(dataDir, 'POST /v1/stacks', {
      stack: stackFile.stack,
      services: stackFile.services,
      values: stackFile.values,
      dryRun: Boolean(asked.dryRun),
    });
    return {
      ...response,
      ignored: stackFile.ignored.map((i) => ({ line: i.line, path: i.path, reason: i.reason })),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

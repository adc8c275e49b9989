import { request } from 'node:http';
import type { RequestOf, ResponseOf, RouteName } from '../agent/control/api.js';
import { controlSocketPath } from '../agent/datadir.js';
import { EXIT, UserError } from '../mesh/user-error.js';

/** The agent refused the request: it is wrong, not allowed, about nothing there, or conflicts. */
export class RefusedError extends UserError {}

/** The agent could not be reached, or failed: exit code 4. */
export class AgentFailedError extends UserError {
  override readonly exitCode: number = EXIT.agent;
}

/** The agent cannot answer now (no leader, or its replica is behind): worth asking again. */
export class AgentUnavailableError extends AgentFailedError {}

/** No agent listens on the data dir's socket. */
export class NoAgentError extends AgentFailedError {}

/** The change reached the leader but was not confirmed: it may or may not have been made. */
export class UnknownOutcomeError extends UserError {
  override readonly exitCode: number = EXIT.unknownOutcome;
}

/** The error an agent's answer (not 200) stands for, by its HTTP status. */
function answerError(status: number | undefined, refusal: string): UserError {
  if (status === 503) return new AgentUnavailableError(refusal);
  if (status === 504) return new UnknownOutcomeError(refusal);
  if (status !== undefined && status >= 400 && status < 500) return new RefusedError(refusal);
  return new AgentFailedError(refusal);
}

/**
 * Calls a route of the local agent's control API on the unix socket in its data dir: a GET with
 * the request as its query string, a POST with it as a JSON body.
 */
export function callAgent<R extends RouteName>(
  dataDir: string,
  route: R,
  asked: RequestOf<R>,
): Promise<ResponseOf<R>> {
  const socketPath = controlSocketPath(dataDir);
  const [method, pathname] = route.split(' ') as [string, string];
  const fields = Object.entries(asked).filter(([, value]) => value !== undefined);
  const query = new URLSearchParams(
    fields.map(([key, value]): [string, string] => [key, String(value)]),
  );
  const path = method === 'GET' && fields.length > 0 ? `${pathname}?${query}` : pathname;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        let body: { error?: string } | undefined;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (error) {
          reject(
            new AgentFailedError(
              `the agent answered ${path} with something not JSON: ${(error as Error).message}`,
            ),
          );
          return;
        }
        const refusal =
          body?.error ?? `the agent answered ${path} with HTTP ${response.statusCode}`;
        if (response.statusCode === 200) resolve(body as ResponseOf<R>);
        else reject(answerError(response.statusCode, refusal));
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(
          new NoAgentError(
            `no mesh agent is running with data dir ${dataDir} (start one with "mesh agent", or pass --data-dir)`,
          ),
        );
      } else if (error.code === 'EACCES') {
        reject(
          new AgentFailedError(
            `not allowed to reach the agent's socket ${socketPath}: run as its owner or group`,
          ),
        );
      } else {
        reject(error);
      }
    });
    req.end(method === 'GET' ? undefined : JSON.stringify(asked));
  });
}

import { request } from 'node:http';
import type { RequestOf, ResponseOf, RouteName } from '../agent/control/api.js';
import { controlSocketPath } from '../agent/datadir.js';
import { UsageError } from './args.js';

/** The agent cannot answer now (no leader, or its replica is behind): worth asking again. */
export class AgentUnavailableError extends UsageError {}

/** No agent listens on the data dir's socket. */
export class NoAgentError extends UsageError {}

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
            new Error(
              `the agent answered ${path} with something not JSON: ${(error as Error).message}`,
            ),
          );
          return;
        }
        const refusal =
          body?.error ?? `the agent answered ${path} with HTTP ${response.statusCode}`;
        if (response.statusCode === 200) resolve(body as ResponseOf<R>);
        else if (response.statusCode === 503) reject(new AgentUnavailableError(refusal));
        else reject(new UsageError(refusal));
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
          new UsageError(
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

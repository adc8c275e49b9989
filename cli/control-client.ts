import { request } from 'node:http';
import { join } from 'node:path';
import { UsageError } from './args.js';

/** Calls the local agent's control API on the unix socket in its data dir. */
export function callAgent(
  dataDir: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const socketPath = join(dataDir, 'control.sock');
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
        if (response.statusCode === 200) resolve(body);
        else
          reject(
            new UsageError(
              body?.error ?? `the agent answered ${path} with HTTP ${response.statusCode}`,
            ),
          );
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(
          new UsageError(
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
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

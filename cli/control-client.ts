import { readFileSync } from 'node:fs';
import { type ClientRequest, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { OperatorContext, RequestOf, ResponseOf, RouteName } from '../agent/control/api.js';
import { controlSocketPath } from '../agent/datadir.js';
import { splitHostPort } from '../mesh/transport/address.js';
import { EXIT, UserError } from '../mesh/user-error.js';
import { UsageError } from './args.js';

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
 * Calls a route of the agent's control API: the local agent's, on the unix socket in its data
 * dir, or with a context (`mesh --context FILE`, $MESH_CONTEXT) a manager's, over mTLS as the
 * operator the context names. A GET sends the request as its query string, a POST as JSON.
 */
export async function callAgent<R extends RouteName>(
  dataDir: string,
  route: R,
  asked: RequestOf<R>,
): Promise<ResponseOf<R>> {
  const [method, pathname] = route.split(' ') as [string, string];
  const fields = Object.entries(asked).filter(([, value]) => value !== undefined);
  const query = new URLSearchParams(
    fields.map(([key, value]): [string, string] => [key, String(value)]),
  );
  const path = method === 'GET' && fields.length > 0 ? `${pathname}?${query}` : pathname;
  const body = method === 'GET' ? undefined : JSON.stringify(asked);
  const context = process.env.MESH_CONTEXT;
  if (context) return (await callRemote(readContext(context), method, path, body)) as ResponseOf<R>;
  const socketPath = controlSocketPath(dataDir);
  return (await exchange(() => request({ socketPath, method, path }), path, body).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')
        throw new NoAgentError(
          `no mesh agent is running with data dir ${dataDir} (start one with "mesh agent", or pass --data-dir)`,
        );
      if (error.code === 'EACCES')
        throw new AgentFailedError(
          `not allowed to reach the agent's socket ${socketPath}: run as its owner or group`,
        );
      throw error;
    },
  )) as ResponseOf<R>;
}

/** Errors of a connection that never reached a node: the next endpoint may answer. */
const UNREACHED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);
/** How long a node of a context may take to take the connection. */
const CONNECT_TIMEOUT_MS = 5000;

/** The route on the first manager of the context that takes the connection. */
async function callRemote(
  context: OperatorContext,
  method: string,
  path: string,
  body: string | undefined,
): Promise<unknown> {
  const unreached: string[] = [];
  for (const endpoint of context.endpoints) {
    const { host, port } = splitHostPort(endpoint);
    const send = () => {
      const req = httpsRequest({
        host,
        port,
        method,
        path: `/control${path}`,
        ca: context.ca,
        cert: context.cert,
        key: context.key,
        agent: false,
        // Nodes are named by their certificate (node role, this cluster), not by an address.
        checkServerIdentity: (_host, cert) =>
          cert.subject.O === context.cluster && cert.subject.OU === 'node'
            ? undefined
            : new Error(`${endpoint} is not a node of cluster ${context.cluster}`),
      });
      // Only the connection is timed: an answer may take as long as the command does.
      const timer = setTimeout(() => {
        const late = new Error(`no connection within ${CONNECT_TIMEOUT_MS} ms`);
        req.destroy(Object.assign(late, { code: 'ETIMEDOUT' }));
      }, CONNECT_TIMEOUT_MS);
      req.on('socket', (socket) => socket.once('secureConnect', () => clearTimeout(timer)));
      req.on('close', () => clearTimeout(timer));
      return req;
    };
    try {
      return await exchange(send, path, body);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!UNREACHED.has(code)) throw error;
      unreached.push(`${endpoint} (${code})`);
    }
  }
  throw new NoAgentError(
    `no manager of cluster ${context.cluster} took the connection: ${unreached.join(', ') || 'the context names none'}`,
  );
}

/** The context file of `mesh operator add`, read and checked for what callRemote needs. */
function readContext(file: string): OperatorContext {
  let parsed: Partial<OperatorContext>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<OperatorContext>;
  } catch (error) {
    throw new UsageError(`--context ${file}: ${(error as Error).message}`);
  }
  const missing = (['cluster', 'operator', 'endpoints', 'ca', 'cert', 'key'] as const).filter(
    (key) => !parsed[key],
  );
  if (missing.length > 0)
    throw new UsageError(
      `--context ${file} is not a mesh context (no ${missing.join(', ')}): "mesh operator add NAME" on a manager prints one`,
    );
  return parsed as OperatorContext;
}

/** Sends one request and reads its JSON answer: the value, or the refusal it stands for. */
function exchange(
  send: () => ClientRequest,
  path: string,
  body: string | undefined,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = send();
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        let answer: { error?: string } | undefined;
        try {
          answer = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (error) {
          reject(
            new AgentFailedError(
              `the agent answered ${path} with something not JSON: ${(error as Error).message}`,
            ),
          );
          return;
        }
        const refusal =
          answer?.error ?? `the agent answered ${path} with HTTP ${response.statusCode}`;
        if (response.statusCode === 200) resolve(answer);
        else reject(answerError(response.statusCode, refusal));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

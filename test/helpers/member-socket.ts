/**
 * A member's connection made by hand, for tests that speak to a real agent as a misbehaving or
 * stolen identity would: a WebSocket with a key and certificate of the test's choosing, and frames
 * packed with msgpackr (none of the project's transport code on the sending side).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import type { AgentProcess } from './local-cluster.js';

export const packr = new Packr({ useRecords: false, mapsAsObjects: true });
/** The transport's frame tags (mesh/transport/frame.ts), written down again on purpose. */
export const MESSAGE = 0;
export const REQUEST = 1;
const RESPONSE = 2;

export interface Credentials {
  key: string;
  cert: string;
}

/** The key and certificate in an agent's data dir. */
export function credentialsOf(agent: AgentProcess): Credentials {
  const pki = (file: string) => readFileSync(join(agent.dataDir, 'pki', file), 'utf8');
  return { key: pki('node.key'), cert: pki('node.crt') };
}

/**
 * A WebSocket to the agent's cluster port with these credentials, from `localAddress`; resolves
 * once open, or with the refusal the agent answered.
 */
export async function connectAs(
  to: AgentProcess,
  credentials: Credentials,
  localAddress: string,
): Promise<WebSocket | string> {
  const { advertise, port } = JSON.parse(readFileSync(join(to.dataDir, 'cluster.json'), 'utf8'));
  // ws passes these to tls.connect; its typings know only its own options.
  const tls = {
    ...credentials,
    ca: readFileSync(join(to.dataDir, 'pki', 'ca.crt'), 'utf8'),
    localAddress,
    checkServerIdentity: () => undefined,
  };
  const ws = new WebSocket(
    `wss://${advertise}:${port}/mesh/v1`,
    tls as unknown as ConstructorParameters<typeof WebSocket>[1],
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_request, response) =>
      resolve(String(response.headers['x-mesh-refused'] ?? response.statusCode)),
    );
    ws.once('error', reject);
  });
}

/** As connectAs, failing when refused. */
export async function connected(
  to: AgentProcess,
  credentials: Credentials,
  localAddress: string,
): Promise<WebSocket> {
  const ws = await connectAs(to, credentials, localAddress);
  if (typeof ws === 'string') throw new Error(`refused: ${ws}`);
  return ws;
}

/** Sends a request frame and resolves with the answer's body (or rejects with the failure). */
export function ask(ws: WebSocket, id: number, type: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (data: Buffer) => {
      const [kind, answered, answer] = packr.unpack(data) as [number, number, unknown];
      if (answered !== id) return;
      ws.off('message', onMessage);
      if (kind === RESPONSE) resolve(answer);
      else reject(new Error(String(answer)));
    };
    ws.on('message', onMessage);
    ws.send(packr.pack([REQUEST, id, type, body]));
  });
}

/**
 * How the ingress workers reach replicas on other nodes: the streams between agents (mTLS with
 * the node's identity) belong to the agent, so a worker asks it for one over the agent's
 * abstract Unix socket and gets the stream's bytes spliced through it. The ask is
 * one line (`<secret> <node> <target>`), the answer `ok` or `refused <reason>`; then the bytes.
 * Any process of the host could connect to the socket: only one that knows the secret (handed
 * to the workers at their start) is served, so nobody else reaches other nodes' tasks through it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { readHead } from '../../mesh/transport/read-head.js';
import { splice } from '../l4/splice.js';

const MAX_LINE = 1024;

/** Reads one line from a socket; the bytes after it are put back for whoever reads next. */
async function readLine(socket: Socket): Promise<string> {
  return (await readHead(socket, '\n', MAX_LINE)).toString();
}

/** The agent's side: opens what an ingress worker asks for and splices it through. */
export class DialBridge {
  private readonly server: Server;
  /** What the asker proves it was told (hex). */
  readonly secret = randomBytes(32).toString('hex');

  constructor(
    readonly path: string,
    open: (nodeId: string, target: string) => Promise<Duplex>,
    log: Logger,
  ) {
    this.server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      readLine(socket)
        .then(async (line) => {
          const [secret = '', nodeId = '', target = ''] = line.split(' ');
          if (!this.knows(secret)) {
            log.warn(
              { peer: nodeId, target },
              'ingress bridge: refused a local process that does not know its secret',
            );
            socket.destroy();
            return;
          }
          let stream: Duplex;
          try {
            stream = await open(nodeId, target);
          } catch (error) {
            const reason = (error as Error).message;
            // The ingress worker logs what it makes of it (another replica, or a 502).
            log.debug({ peer: nodeId, target, reason }, 'no stream for the ingress');
            socket.end(`refused ${reason.replace(/\n/g, ' ')}\n`);
            return;
          }
          socket.write('ok\n');
          await splice(socket, stream);
        })
        .catch(() => socket.destroy()); // the ingress worker went away mid-ask: nothing to answer
    });
  }

  private knows(secret: string): boolean {
    const given = Buffer.from(secret);
    const own = Buffer.from(this.secret);
    return given.length === own.length && timingSafeEqual(given, own);
  }

  async listen(): Promise<void> {
    // The kernel caps the backlog (somaxconn): a burst of dials waits there, never refused.
    this.server.listen({ path: this.path, backlog: 65_535 });
    await once(this.server, 'listening');
  }

  close(): void {
    this.server.close();
  }
}

/**
 * An ingress worker's side: a connection to `target` on another node, through the agent.
 * It arrives paused, as a stream between agents does.
 */
export async function dialThroughBridge(
  bridge: { path: string; secret: string },
  nodeId: string,
  target: string,
): Promise<Socket> {
  const socket = connect({ path: bridge.path, allowHalfOpen: true });
  // While asking, readLine reports an error; once handed over, the caller's handlers do. This one
  // only keeps an error between the two from being thrown as unhandled.
  socket.on('error', () => undefined);
  socket.write(`${bridge.secret} ${nodeId} ${target}\n`);
  const answer = await readLine(socket).catch((error: Error) => {
    socket.destroy();
    throw new Error(`the agent's ingress bridge gave no answer: ${error.message}`);
  });
  if (answer !== 'ok') {
    socket.destroy();
    throw new Error(answer.replace(/^refused /, ''));
  }
  return socket;
}

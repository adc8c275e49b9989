import { Agent } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../routing-table.js';

/** Opens a connection to an endpoint's port: directly on this node, through its agent elsewhere. */
export type Connect = (endpoint: Endpoint, target: number) => Promise<Duplex>;

/**
 * Keep-alive connection pools, one per endpoint and port: a request reuses an idle connection to
 * the replica it was sent to, whichever node it runs on (a pooled connection to a replica on
 * another node is a TLS stream through that node's agent).
 */
export class UpstreamPools {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly connect: Connect) {}

  agentFor(endpoint: Endpoint, target: number): Agent {
    const key = `${endpoint.taskId}/${target}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
      // Node's Agent takes a connection made asynchronously through the callback.
      agent.createConnection = (_options, callback) => {
        this.connect(endpoint, target).then(
          (socket) => {
            // A stream through another agent arrives paused (nothing of it may be lost before its
            // reader is there); HTTP's reader attaches without resuming, and the replica says
            // nothing before it is asked.
            socket.resume();
            callback?.(null, socket as never);
          },
          (error: Error) => callback?.(error, undefined as never),
        );
        return undefined as never;
      };
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Closes the pools of endpoints no longer in the table. */
  retain(taskIds: ReadonlySet<string>): void {
    for (const [key, agent] of this.agents)
      if (!taskIds.has(key.slice(0, key.lastIndexOf('/')))) {
        agent.destroy();
        this.agents.delete(key);
      }
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

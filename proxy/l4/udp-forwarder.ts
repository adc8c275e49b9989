import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { LimitedLog } from '../../mesh/limited-log.js';
import { everyShared } from '../../mesh/shared-interval.js';
import { type ServiceRoute, servingUdpPort } from '../routing-table.js';
import { EndpointCounters, type Lease } from './balancer.js';
import { DatagramReader, frameDatagram } from './datagram-frames.js';
import { type Flow, FlowTable } from './udp-flows.js';

/** Datagrams a flow to another node holds while its stream opens: past that, new ones are dropped. */
const MAX_QUEUED = 64;
/** A stream that has this much unsent drops datagrams instead of queueing more (UDP is lossy). */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

/** Where a datagram came from, and how to answer it from the address it was sent to. */
export interface DatagramSource {
  address: string;
  port: number;
  reply: (payload: Buffer) => void;
}

/** Opens a stream that carries a UDP flow to a task on another node, through that node's agent. */
export type RemoteFlowDialer = (nodeId: string, taskId: string, port: number) => Promise<Duplex>;

export interface UdpForwarderOptions {
  nodeId: string;
  /** A flow without a datagram either way for this long is forgotten. */
  idleMs: number;
  dialRemote: RemoteFlowDialer;
  log: Logger;
}

interface UdpFlow extends Flow {
  key: string;
  send(payload: Buffer): void;
  close(): void;
}

/**
 * Sends each client's datagrams to a replica of the service (the one with the fewest flows when
 * its first datagram comes) and the replica's answers back to the client, from the address the
 * client sent to: a socket of its own per flow for a replica on this node, a stream through the
 * replica's node for one elsewhere.
 */
export class UdpForwarder {
  readonly counters = new EndpointCounters();
  private readonly flows: FlowTable<UdpFlow>;
  private readonly stopSweeping: () => void;
  private readonly drops: LimitedLog;

  constructor(private readonly options: UdpForwarderOptions) {
    this.flows = new FlowTable(options.idleMs);
    this.drops = new LimitedLog(options.log, 1);
    this.stopSweeping = everyShared(Math.max(10, Math.min(1000, options.idleMs / 4)), () =>
      this.end(this.flows.expire(Date.now())),
    );
  }

  /** Flows open now. */
  get size(): number {
    return this.flows.size;
  }

  /** Whether datagrams from this source to this listener already go somewhere. */
  has(listener: string, source: DatagramSource): boolean {
    return this.flows.get(flowKey(listener, source)) !== undefined;
  }

  /** A datagram a client sent to a UDP port of the service, on `listener` (its address:port). */
  forward(
    listener: string,
    source: DatagramSource,
    payload: Buffer,
    service: ServiceRoute,
    target: number,
  ): void {
    const key = flowKey(listener, source);
    const now = Date.now();
    let flow = this.flows.get(key);
    if (!flow) {
      const lease = this.counters.acquire(servingUdpPort(service, target), new Set());
      if (!lease) {
        this.drops.warn(
          `${service.id}:${target}`,
          { service: service.id, port: `${target}/udp` },
          'no ready replica serves this UDP port: datagram dropped',
        );
        return;
      }
      flow = this.open(key, lease, target, source);
      this.flows.add(key, flow);
    }
    this.flows.touch(flow, now);
    flow.send(payload);
  }

  /** Ends the flows to tasks no longer listed ready: their next datagram picks a live replica. */
  retain(taskIds: ReadonlySet<string>): void {
    this.end(this.flows.retain(taskIds));
    this.counters.retain(taskIds);
  }

  close(): void {
    this.stopSweeping();
    this.end(this.flows.clear());
  }

  private end(flows: UdpFlow[]): void {
    for (const flow of flows) this.closed(flow);
  }

  /** A flow is over: its socket or stream closed, and its replica counts one flow less. */
  private closed(flow: UdpFlow): void {
    this.flows.delete(flow.key, flow);
    flow.close();
  }

  /** A flow to the leased replica: it counts on the replica until the flow closes. */
  private open(key: string, lease: Lease, target: number, source: DatagramSource): UdpFlow {
    const { endpoint } = lease;
    const base = { key, taskId: endpoint.taskId, lastSeen: Date.now() };
    const answered = (payload: Buffer) => {
      const flow = this.flows.get(key);
      if (flow) this.flows.touch(flow, Date.now());
      source.reply(payload);
    };
    if (endpoint.nodeId === this.options.nodeId) {
      const port = endpoint.udpPorts.get(target) as number;
      const socket = endpointSocket(endpoint.host, port, answered, this.options.log);
      return {
        ...base,
        send: (payload) => socket.send(payload, port, endpoint.host),
        close: () => {
          lease.release();
          socket.close();
        },
      };
    }
    return this.remoteFlow(base, lease, target, answered);
  }

  /** A flow to a replica on another node: datagrams framed on a stream, queued until it opens. */
  private remoteFlow(
    base: { key: string; taskId: string; lastSeen: number },
    lease: Lease,
    target: number,
    answered: (payload: Buffer) => void,
  ): UdpFlow {
    const { endpoint } = lease;
    let stream: Duplex | undefined;
    let queued: Buffer[] | undefined = [];
    const flow: UdpFlow = {
      ...base,
      send: (payload) => {
        if (stream) sendFramed(stream, payload);
        else if (queued && queued.length < MAX_QUEUED) queued.push(payload);
      },
      close: () => {
        lease.release();
        queued = undefined;
        stream?.destroy();
      },
    };
    this.options
      .dialRemote(endpoint.nodeId, endpoint.taskId, target)
      .then((opened) => {
        if (!queued) {
          opened.destroy(); // the flow ended while its stream opened
          return;
        }
        stream = opened;
        for (const payload of queued) sendFramed(opened, payload);
        queued = [];
        const reader = new DatagramReader();
        opened.on('data', (chunk: Buffer) => {
          for (const payload of reader.push(chunk)) answered(payload);
        });
        opened.resume(); // a stream comes paused, for pipe()
        opened.on('error', () => opened.destroy());
        opened.once('close', () => this.closed(flow));
      })
      .catch((error: Error) => {
        lease.failed();
        this.options.log.warn(
          { task: endpoint.taskId, onNode: endpoint.nodeId, reason: error.message },
          'UDP flow to a replica on another node not opened: its datagrams are dropped',
        );
        this.closed(flow);
      });
    return flow;
  }
}

function flowKey(listener: string, source: { address: string; port: number }): string {
  return `${listener} ${source.address}:${source.port}`;
}

/** Writes a datagram on a stream, unless the stream already holds a backlog: then it is dropped. */
function sendFramed(stream: Duplex, payload: Buffer): void {
  if (stream.writable && stream.writableLength < MAX_STREAM_BACKLOG_BYTES)
    stream.write(frameDatagram(payload));
}

/**
 * A socket of its own towards one endpoint's port (so the endpoint's answers come back to it, and
 * only to it): what arrives from that endpoint is passed on; anything from elsewhere is dropped.
 */
function endpointSocket(
  host: string,
  port: number,
  onAnswer: (payload: Buffer) => void,
  log: Logger,
): DatagramSocket {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (payload, from) => {
    if (from.address === host && from.port === port) onAnswer(payload);
  });
  socket.on('error', (error) =>
    log.debug({ endpoint: `${host}:${port}`, reason: error.message }, 'UDP flow socket error'),
  );
  return socket;
}

/**
 * The far end of a flow another node carries here: the stream's datagrams go to the endpoint's
 * port from a socket of their own, and its answers go back on the stream, until either closes.
 */
export function serveRemoteFlow(stream: Duplex, host: string, port: number, log: Logger): void {
  const socket = endpointSocket(host, port, (payload) => sendFramed(stream, payload), log);
  const reader = new DatagramReader();
  stream.on('data', (chunk: Buffer) => {
    for (const payload of reader.push(chunk)) socket.send(payload, port, host);
  });
  stream.resume(); // a stream comes paused, for pipe()
  stream.on('error', () => stream.destroy());
  stream.once('close', () => socket.close());
}

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { Counts } from '../../mesh/counts.js';
import { LimitedLog } from '../../mesh/limited-log.js';
import type { UpstreamResolvers } from './forward.js';
import { answerKind, failure, parseQuery, type Question, RCODE, respond, UDP_MAX } from './wire.js';
import { lookup, type Zone } from './zone.js';

/** A TCP client idle this long between queries is closed (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
const TCP_MAX_QUERY = 65_535;
/** Queries of one TCP connection answered at once (forwarded ones wait for upstream). */
const TCP_MAX_IN_FLIGHT = 16;

export interface DnsServerOptions {
  zone: () => Zone;
  /** Whether a query from this address is answered (the node itself and the cluster's containers). */
  allowed: (ip: string) => boolean;
  /** Asked when `allowed` said no: whether it does after looking again (a container just started). */
  recheck: (ip: string) => Promise<boolean>;
  upstreams: UpstreamResolvers;
  /** TCP connections held at most per address: past that they are refused at accept. */
  maxConnections: number;
  log: Logger;
}

/**
 * The node's DNS server: UDP and TCP on each address it is given. Zone answers are copies of
 * precomputed bytes; other names go upstream; a source that is not allowed gets REFUSED.
 */
export class DnsServer {
  private readonly udp = new Map<string, UdpSocket>();
  private readonly tcp = new Map<string, Server>();
  /** What a client can make this server warn about, a line a minute per source and kind. */
  private readonly warnings: LimitedLog;
  /** Answers sent, by question type and response code; questions sent upstream, by outcome. */
  readonly counts = {
    answers: new Counts<{ type: string; rcode: string }>(),
    forwarded: new Counts<{ outcome: 'answered' | 'failed' }>(),
  };

  constructor(private readonly options: DnsServerOptions) {
    this.warnings = new LimitedLog(options.log, 1);
  }

  /** The addresses (host:port) served now. */
  get addresses(): string[] {
    return [...this.udp.keys()];
  }

  /** TCP clients connected now, on every address. */
  async tcpClients(): Promise<number> {
    const counts = await Promise.all(
      [...this.tcp.values()].map(
        (server) =>
          new Promise<number>((resolve, reject) =>
            server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
          ),
      ),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  async listen(host: string, port: number): Promise<void> {
    const key = `${host}:${port}`;
    if (this.udp.has(key)) return;
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    udp.on('message', (query, remote) => this.onDatagram(udp, query, remote.address, remote.port));
    udp.on('error', (error) =>
      this.options.log.warn({ address: key, reason: error.message }, 'DNS socket error'),
    );
    udp.bind(port, host);
    await once(udp, 'listening');
    const tcp = createServer((socket) => this.onConnection(socket));
    tcp.maxConnections = this.options.maxConnections;
    tcp.on('error', (error) =>
      this.options.log.warn({ address: key, reason: error.message }, 'DNS TCP error'),
    );
    try {
      tcp.listen(port, host);
      await once(tcp, 'listening');
    } catch (error) {
      udp.close();
      throw error;
    }
    this.udp.set(key, udp);
    this.tcp.set(key, tcp);
  }

  unlisten(key: string): void {
    this.udp.get(key)?.close();
    this.tcp.get(key)?.close();
    this.udp.delete(key);
    this.tcp.delete(key);
  }

  close(): void {
    for (const key of [...this.udp.keys()]) this.unlisten(key);
    this.options.upstreams.close();
  }

  /**
   * As answer(), but a query that makes it fail is dropped and logged (a line a minute per
   * source): a bug it finds must not stop the agent, which serves every node's names.
   */
  private safely(
    query: Buffer,
    source: string,
    maxBytes: number,
  ): Buffer | Promise<Buffer | undefined> | undefined {
    const failed = (error: Error) => {
      this.warnings.warn(source, { source, err: error }, 'DNS query failed; dropped');
      return undefined;
    };
    const counted = (answer: Buffer | undefined) => {
      if (answer) this.counts.answers.add(answerKind(answer));
      return answer;
    };
    try {
      const out = this.answer(query, source, maxBytes);
      return out instanceof Promise ? out.then(counted, failed) : counted(out);
    } catch (error) {
      return failed(error as Error);
    }
  }

  /** The answer to one query, or undefined to send nothing. */
  private answer(
    query: Buffer,
    source: string,
    maxBytes: number,
  ): Buffer | Promise<Buffer | undefined> | undefined {
    const parsed = parseQuery(query);
    if (!parsed) return undefined;
    if ('error' in parsed) return failure(query, parsed.id, parsed.error);
    const { question } = parsed;
    if (this.options.allowed(source)) return this.resolve(query, question, maxBytes);
    return this.options.recheck(source).then((allowed) => {
      if (allowed) return this.resolve(query, question, maxBytes);
      this.warnings.warn(
        source,
        { source, name: question.name },
        'DNS query from outside the cluster refused',
      );
      return failure(query, question.id, RCODE.REFUSED, question);
    });
  }

  private resolve(
    query: Buffer,
    question: Question,
    maxBytes: number,
  ): Buffer | Promise<Buffer | undefined> {
    const found = lookup(this.options.zone(), question.name, question.type);
    if (found !== 'forward') return respond(query, question, found, maxBytes);
    return this.options.upstreams.resolve(query, question).then((answer) => {
      this.counts.forwarded.add({ outcome: answer ? 'answered' : 'failed' });
      return answer ?? failure(query, question.id, RCODE.SERVFAIL, question);
    });
  }

  private onDatagram(socket: UdpSocket, query: Buffer, address: string, port: number): void {
    const out = this.safely(query, address, UDP_MAX);
    if (!out) return;
    if (out instanceof Promise)
      void out.then((answer) => answer && socket.send(answer, port, address));
    else socket.send(out, port, address);
  }

  /**
   * DNS over TCP: each message behind its two-byte length (RFC 1035 §4.2.2). A client that sends
   * faster than it reads is held back: at most a few queries are answered at once, and nothing
   * more is read while the answers wait to be sent (RFC 7766 §6.2.2), so one connection holds a
   * bounded amount of memory whatever it sends; an idle one is closed.
   */
  private onConnection(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    let inFlight = 0;
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const mayRead = () => inFlight < TCP_MAX_IN_FLIGHT && !socket.writableNeedDrain;
    const send = (answer: Buffer | undefined) => {
      inFlight -= 1;
      if (!answer || socket.destroyed) return;
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(answer.length);
      socket.write(Buffer.concat([prefix, answer]));
    };
    const take = () => {
      while (buffered.length >= 2 && mayRead() && !socket.destroyed) {
        const length = buffered.readUInt16BE(0);
        if (length > TCP_MAX_QUERY || length < 12) {
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + length) break;
        const query = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        inFlight += 1;
        const out = this.safely(query, socket.remoteAddress ?? '', Number.POSITIVE_INFINITY);
        // A forwarded answer comes later, and takes up the reading again when it is sent.
        if (out instanceof Promise)
          void out.then((answer) => {
            send(answer);
            take();
          });
        else send(out);
      }
      if (mayRead()) socket.resume();
      else socket.pause();
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      take();
    });
    socket.on('drain', take);
  }
}

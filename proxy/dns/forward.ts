import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { LimitedLog } from '../../mesh/limited-log.js';
import { splitHostPort } from '../../mesh/transport/address.js';
import { UpstreamHealth } from './upstream-health.js';
import type { Question } from './wire.js';

/** An upstream that does not answer within this is given up on: the client gets SERVFAIL. */
export const FORWARD_TIMEOUT_MS = 2000;
/** Queries waiting for upstreams at once (a socket each); more are answered SERVFAIL, not queued. */
const MAX_PENDING = 1024;

/** The host's resolvers (`nameserver` lines of /etc/resolv.conf), as host:port, but not these. */
export function hostResolvers(exclude: ReadonlySet<string>, path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)]
    .map((m) => m[1] as string)
    .filter((ip) => !exclude.has(ip) && ip !== '127.0.0.11')
    .map((ip) => `${ip}:53`);
}

/** Whether a datagram is the answer to this query: our ID, a response, the same one question. */
function answers(answer: Buffer, id: number, query: Buffer, question: Question): boolean {
  if (answer.length < question.end || answer.readUInt16BE(0) !== id) return false;
  if (!(answer.readUInt16BE(2) & 0x8000) || answer.readUInt16BE(4) !== 1) return false;
  for (let i = 12; i < question.end; i++) {
    const a = answer[i] as number;
    const q = query[i] as number;
    // Letters compare without regard to case (RFC 1035 §2.3.3; some resolvers echo 0x20 case).
    const letter = (a | 0x20) >= 0x61 && (a | 0x20) <= 0x7a;
    if (a !== q && !(letter && (a | 0x20) === (q | 0x20))) return false;
  }
  return true;
}

/**
 * Sends queries for names outside the zone to upstream resolvers over UDP, as RFC 5452 asks:
 * each attempt from a socket of its own on a port the system picks, connected to the upstream
 * asked (the kernel drops datagrams from any other address or port), under an ID from node:crypto;
 * only a response with that ID to the same question is taken, so an off-path sender must guess
 * both. An upstream that does not answer in time is left for the next one within the deadline
 * and tried last for a while (upstream-health.ts). No answer in time (or no upstream at all)
 * resolves undefined, for the caller to answer SERVFAIL.
 */
export class UpstreamResolvers {
  private readonly health: UpstreamHealth;
  private readonly attempts = new Set<() => void>();
  private readonly ignored: LimitedLog;
  private pending = 0;

  constructor(
    private readonly upstreams: string[],
    private readonly log: Logger,
    private readonly timeoutMs = FORWARD_TIMEOUT_MS,
  ) {
    this.health = new UpstreamHealth(upstreams);
    this.ignored = new LimitedLog(log, 1);
  }

  async resolve(query: Buffer, question: Question): Promise<Buffer | undefined> {
    if (this.upstreams.length === 0 || this.pending >= MAX_PENDING) return undefined;
    this.pending += 1;
    try {
      const deadline = Date.now() + this.timeoutMs;
      const order = this.health.order(Date.now());
      for (const [i, upstream] of order.entries()) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        // The time left is shared among the upstreams still to try.
        const answer = await this.ask(upstream, query, question, left / (order.length - i));
        if (answer) {
          this.health.answered(upstream);
          return answer;
        }
        this.health.failed(upstream, Date.now());
      }
      return undefined;
    } finally {
      this.pending -= 1;
    }
  }

  close(): void {
    for (const stop of [...this.attempts]) stop();
  }

  /** One attempt at one upstream; undefined when it gave no answer to this query in time. */
  private ask(
    upstream: string,
    query: Buffer,
    question: Question,
    timeoutMs: number,
  ): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const { host, port } = splitHostPort(upstream);
      const id = randomInt(65_536);
      const outgoing = Buffer.from(query);
      outgoing.writeUInt16BE(id, 0);
      const socket = createSocket('udp4');
      let settled = false;
      const done = (answer?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.attempts.delete(stop);
        socket.close();
        if (answer) answer.writeUInt16BE(question.id, 0);
        resolve(answer);
      };
      const stop = () => done();
      const timer = setTimeout(() => {
        this.log.debug({ upstream }, 'upstream resolver did not answer in time');
        done();
      }, timeoutMs);
      this.attempts.add(stop);
      socket.on('error', (error) => {
        this.log.debug({ upstream, reason: error.message }, 'upstream resolver failed');
        done();
      });
      socket.on('message', (answer) => {
        if (answers(answer, id, query, question)) done(answer);
        else
          this.ignored.warn(
            upstream,
            { upstream, name: question.name },
            'DNS answer ignored: not the answer to the query sent (wrong ID or question)',
          );
      });
      socket.connect(port, host, () =>
        socket.send(outgoing, (error) => {
          if (!error) return;
          this.log.debug({ upstream, reason: error.message }, 'query not sent upstream');
          done();
        }),
      );
    });
  }
}

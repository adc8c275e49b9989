/** The headers the ingress passes on, drops and adds. */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { plainAddress } from '../source-policy.js';

/** Headers of one connection only, never passed on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  // Answered by this server itself (100 Continue); the client library forbids passing it on.
  'expect',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/** The host a client asked for: its Host, or in HTTP/2 the request's :authority. */
export function authorityOf(req: IncomingMessage): string {
  const authority = req.headers.host ?? req.headers[':authority'];
  return typeof authority === 'string' ? authority : '';
}

/**
 * Raw headers (name, value, name, value...) without the hop-by-hop ones, nor HTTP/2's pseudo
 * headers (`:method`, `:path`...: the request line of an HTTP/1.1 request to a replica).
 */
export function withoutHopByHop(raw: string[], keepUpgrade = false): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i]?.toLowerCase() === 'connection')
      for (const token of (raw[i + 1] ?? '').split(',')) named.add(token.trim().toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const hop = HOP_BY_HOP.has(name) || named.has(name) || name.startsWith(':');
    if (hop && !(keepUpgrade && (name === 'connection' || name === 'upgrade'))) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/**
 * A request line in absolute form (`GET http://host/path`, as proxies send it) made origin form,
 * as RFC 9112 §3.2.2 asks of a server: the target's authority is the Host, whatever the Host field
 * said, and only the path and query go on. A request in origin form is left as it is.
 */
export function toOriginForm(req: IncomingMessage): void {
  const url = req.url ?? '/';
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) return;
  const target = new URL(url);
  req.url = `${target.pathname}${target.search}`;
  req.headers.host = target.host;
  const raw = req.rawHeaders;
  const at = raw.findIndex((name, i) => i % 2 === 0 && name.toLowerCase() === 'host');
  if (at >= 0) raw[at + 1] = target.host;
  else raw.push('Host', target.host);
}

/**
 * The request's headers as the replica gets them: hop-by-hop ones dropped (but Connection and
 * Upgrade of an upgrade), and X-Forwarded-For, -Proto and -Host saying who asked and how. A
 * trusted peer's own X-Forwarded-* are kept and extended; anyone else's are replaced.
 */
export function forwardHeaders(
  req: IncomingMessage,
  scheme: 'http' | 'https',
  trusted: (ip: string) => boolean,
  upgrade = false,
): string[] {
  const peer = plainAddress((req.socket as Socket).remoteAddress ?? '');
  const believed = trusted(peer);
  const raw = withoutHopByHop(req.rawHeaders, upgrade);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    if (name.startsWith('x-forwarded-')) continue;
    out.push(raw[i] as string, raw[i + 1] as string);
  }
  const incoming = (name: string) => {
    const value = req.headers[name];
    return believed && typeof value === 'string' && value !== '' ? value : undefined;
  };
  // An HTTP/2 client names the host in :authority alone; a replica asked in HTTP/1.1 needs Host.
  if (!out.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'host'))
    out.push('Host', authorityOf(req));
  const chain = incoming('x-forwarded-for');
  out.push('X-Forwarded-For', chain ? `${chain}, ${peer}` : peer);
  out.push('X-Forwarded-Proto', incoming('x-forwarded-proto') ?? scheme);
  out.push('X-Forwarded-Host', incoming('x-forwarded-host') ?? authorityOf(req));
  return out;
}

/** A header object (as the client library gives an answer's) without the hop-by-hop fields. */
export function withoutHopByHopFields(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase()),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) out[name] = value;
  return out;
}

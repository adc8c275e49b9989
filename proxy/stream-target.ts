/**
 * What a stream between two agents is for, as its target names it: a task's TCP port
 * (`<task>/<port>`), the HTTP relay in front of it (`http/<task>/<port>`), or a UDP flow to it
 * (`udp/<task>/<port>`). One codec, for the side that opens a stream and the side that serves it.
 */
export type StreamKind = 'tcp' | 'http' | 'udp';

export interface StreamTarget {
  kind: StreamKind;
  taskId: string;
  port: number;
}

const PREFIX: Record<StreamKind, string> = { tcp: '', http: 'http/', udp: 'udp/' };

export function formatStreamTarget({ kind, taskId, port }: StreamTarget): string {
  return `${PREFIX[kind]}${taskId}/${port}`;
}

/** The target a stream names; undefined when it names none (a peer's mistake, or worse). */
export function parseStreamTarget(text: string): StreamTarget | undefined {
  const kind = (['http', 'udp'] as const).find((k) => text.startsWith(PREFIX[k])) ?? 'tcp';
  const rest = text.slice(PREFIX[kind].length);
  const slash = rest.lastIndexOf('/');
  if (slash <= 0 || rest.slice(0, slash).includes('/')) return undefined;
  const port = Number(rest.slice(slash + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { kind, taskId: rest.slice(0, slash), port };
}

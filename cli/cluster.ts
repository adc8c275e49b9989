import type { NodesResponse, StatusResponse, TokenResponse } from '../agent/control-api.js';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, UsageError } from './args.js';
import { callAgent } from './control-client.js';
import { ago, table } from './table.js';

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
}

export async function node(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'ls')
    throw new UsageError(`node ${sub ?? ''}: only "node ls" is built so far`.replace('  ', ' '));
  const { values } = parse('node ls', rest, { ...DATA_DIR, ...JSON_OUTPUT });
  const { consistent, nodes } = (await callAgent(
    dataDirOf(values),
    'GET',
    '/v1/nodes',
  )) as NodesResponse;
  if (!consistent) {
    process.stderr.write(
      'mesh: no Raft quorum reachable: this is the local, possibly stale, view\n',
    );
  }
  nodes.sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }));
  print(Boolean(values.json), nodes, () =>
    table(
      ['ID', 'ADDRESS', 'STATUS', 'RAFT', 'SINCE', 'VERSION', 'LABELS'],
      nodes.map((n) => [
        n.self ? `${n.id} *` : n.id,
        n.address,
        n.status,
        n.raft,
        n.since ? ago(n.since) : '-',
        n.version,
        Object.entries(n.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '-',
      ]),
    ),
  );
  return 0;
}

export async function status(args: string[]): Promise<number> {
  const { values } = parse('status', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const s = (await callAgent(dataDirOf(values), 'GET', '/v1/status')) as StatusResponse;
  print(Boolean(values.json), s, () =>
    [
      `cluster  ${s.clusterId}`,
      `node     ${s.nodeId} at ${s.address} (mesh ${s.version})`,
      `raft     ${s.raft ? `${s.raft.role}, term ${s.raft.term}, leader ${s.raft.leader ?? '(none yet)'}, commit ${s.raft.commit}, ${s.raft.voters.length} voters, ${s.raft.learners.length} learners` : '-'}`,
      `members  ${Object.entries(s.members)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}`,
    ].join('\n'),
  );
  return 0;
}

export async function token(args: string[]): Promise<number> {
  const { values } = parse('token', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    rotate: { type: 'boolean' },
  });
  const rotate = Boolean(values.rotate);
  const { token: text } = (await callAgent(
    dataDirOf(values),
    rotate ? 'POST' : 'GET',
    rotate ? '/v1/token/rotate' : '/v1/token',
  )) as TokenResponse;
  if (rotate && !values.json)
    process.stderr.write('mesh: join secret rotated; earlier tokens no longer work\n');
  print(Boolean(values.json), { token: text }, () => text);
  return 0;
}

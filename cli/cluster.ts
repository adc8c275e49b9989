import type { NodeRow, NodeUpdateRequest } from '../agent/control/api.js';
import { nodeLabels } from '../mesh/api/nodes.js';
import { DATA_DIR, dataDirOf, JSON_OUTPUT, parse, runSubcommand, UsageError } from './args.js';
import { NODE_COMMANDS } from './commands.js';
import { callAgent } from './control-client.js';
import { LISTING_OPTIONS, printListing } from './listing.js';
import { ago, plural, print, table } from './output.js';

export function node(args: string[]): Promise<number> {
  const update = (sub: 'drain' | 'activate' | 'label') => (rest: string[]) => nodeUpdate(sub, rest);
  return runSubcommand(
    'node',
    args,
    {
      ls: nodeList,
      inspect: nodeInspect,
      drain: update('drain'),
      activate: update('activate'),
      label: update('label'),
      rm: nodeRemove,
    },
    NODE_COMMANDS,
  );
}

async function nodeRemove(args: string[]): Promise<number> {
  const { values, positionals } = parse('node rm', args, {
    ...DATA_DIR,
    ...JSON_OUTPUT,
    force: { type: 'boolean', short: 'f' },
  });
  if (positionals.length === 0) throw new UsageError('node rm needs a node ID or address');
  for (const name of positionals) {
    const result = await callAgent(dataDirOf(values), 'POST /v1/node/rm', {
      node: name,
      force: Boolean(values.force),
    });
    print(Boolean(values.json), result, () => `${result.id}: removed; its certificate is refused`);
  }
  return 0;
}

async function nodeInspect(args: string[]): Promise<number> {
  const { values, positionals } = parse('node inspect', args, { ...DATA_DIR });
  if (!positionals[0]) throw new UsageError('node inspect needs a node ID or address');
  const found = await callAgent(dataDirOf(values), 'GET /v1/node', { node: positionals[0] });
  process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
  return 0;
}

/** node drain|activate NODE, node label NODE KEY=VALUE... KEY-... */
async function nodeUpdate(sub: 'drain' | 'activate' | 'label', args: string[]): Promise<number> {
  const { values, positionals } = parse(`node ${sub}`, args, { ...DATA_DIR, ...JSON_OUTPUT });
  const [name, ...labels] = positionals;
  if (!name) throw new UsageError(`node ${sub} needs a node ID or address`);
  if (sub === 'label' && labels.length === 0)
    throw new UsageError('node label needs KEY=VALUE (add) or KEY- (remove)');
  if (sub !== 'label' && labels.length > 0)
    throw new UsageError(`node ${sub} takes one node, got ${positionals.join(' ')}`);
  const change: Omit<NodeUpdateRequest, 'node'> =
    sub === 'label' ? { labels } : { availability: sub === 'drain' ? 'drain' : 'active' };
  const result = await callAgent(dataDirOf(values), 'POST /v1/node', { node: name, ...change });
  print(Boolean(values.json), result, () =>
    sub === 'label'
      ? `${result.id}: labels ${JSON.stringify(nodeLabels(result.node))}`
      : `${result.id}: ${result.node.availability}${sub === 'drain' ? ' (its tasks move to other nodes)' : ''}`,
  );
  return 0;
}

/** `mesh node ls`'s order: by address, numerically (127.0.0.2 before 127.0.0.10). */
export function byAddress(a: NodeRow, b: NodeRow): number {
  return a.address.localeCompare(b.address, 'en', { numeric: true });
}

async function nodeList(args: string[]): Promise<number> {
  const { values } = parse('node ls', args, { ...DATA_DIR, ...JSON_OUTPUT, ...LISTING_OPTIONS });
  const { consistent, nodes } = await callAgent(dataDirOf(values), 'GET /v1/nodes', {});
  if (!consistent) {
    process.stderr.write(
      'mesh: no Raft quorum reachable: this is the local, possibly stale, view\n',
    );
  }
  nodes.sort(byAddress);
  printListing(values, nodes, {
    id: (n) => n.id,
    table: (nodes) =>
      table(
        [
          'ID',
          'HOSTNAME',
          'ADDRESS',
          'STATUS',
          'AVAILABILITY',
          'MANAGER STATUS',
          'TOKEN',
          'SINCE',
          'VERSION',
          'CERT EXPIRES',
          'INGRESS',
          'LABELS',
        ],
        nodes.map((n) => [
          n.self ? `${n.id} *` : n.id,
          n.hostname || '-',
          n.address,
          n.restarting ? `${n.status} (restarting)` : n.status,
          n.availability,
          // As Swarm says it; a learner that is not seated yet is a worker here.
          n.manager ?? (n.raft === 'learner' ? '-' : n.raft),
          n.token,
          n.since ? ago(n.since) : '-',
          n.version,
          n.certExpires?.slice(0, 10) ?? '-',
          `${n.ingress ?? '-'}${n.ingressUnserved.length ? ` (not on ${n.ingressUnserved.map((u) => u.port).join(', ')})` : ''}`,
          Object.entries(n.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(',') || '-',
        ]),
      ),
  });
  return 0;
}

export async function status(args: string[]): Promise<number> {
  const { values } = parse('status', args, { ...DATA_DIR, ...JSON_OUTPUT });
  const s = await callAgent(dataDirOf(values), 'GET /v1/status', {});
  const { voters, targetVoters, tolerates } = s.raft;
  if (voters.length < targetVoters && !values.json)
    process.stderr.write(
      `mesh: warning: ${plural(voters.length, 'voter')} where the live nodes allow ${targetVoters}: the cluster tolerates ${plural(tolerates, 'failure')} until the leader seats more (it does once they are caught up)\n`,
    );
  print(Boolean(values.json), s, () =>
    [
      `cluster  ${s.clusterId}`,
      `node     ${s.nodeId} at ${s.address} (mesh ${s.version})`,
      `raft     ${s.raft.role}, term ${s.raft.term}, leader ${s.raft.leader ?? '(none yet)'}, commit ${s.raft.commit}`,
      `voters   ${voters.length} (tolerates ${plural(tolerates, 'failure')}), ${plural(s.raft.learners.length, 'learner')}`,
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
    worker: { type: 'boolean' },
  });
  const rotate = Boolean(values.rotate);
  const kind = values.worker ? 'worker' : 'manager';
  const { token: text } = await callAgent(
    dataDirOf(values),
    rotate ? 'POST /v1/token/rotate' : 'GET /v1/token',
    { kind },
  );
  if (rotate && !values.json)
    process.stderr.write(
      `mesh: ${kind} join secret rotated; earlier ${kind} tokens no longer work\n`,
    );
  print(Boolean(values.json), { token: text }, () => text);
  return 0;
}

import { node, status, token } from './cluster.js';
import { agent, init, join } from './daemon.js';

export interface Command {
  name: string;
  args?: string;
  group: 'Cluster' | 'Stacks' | 'Other';
  summary: string;
  /** Absent while the command is still coming. */
  run?: (args: string[]) => Promise<number>;
}

export const COMMANDS: Command[] = [
  {
    name: 'init',
    group: 'Cluster',
    summary: 'create a cluster on this machine and print a join token',
    run: init,
  },
  {
    name: 'join',
    args: 'TOKEN',
    group: 'Cluster',
    summary: 'join this machine to the cluster a token names',
    run: join,
  },
  {
    name: 'agent',
    group: 'Cluster',
    summary: 'run the agent again from an existing data directory',
    run: agent,
  },
  {
    name: 'token',
    args: '[--rotate]',
    group: 'Cluster',
    summary: 'print the join token; --rotate invalidates earlier ones',
    run: token,
  },
  {
    name: 'node',
    args: 'ls',
    group: 'Cluster',
    summary: 'list the nodes and their health (inspect, drain, label, rm coming)',
    run: node,
  },
  {
    name: 'status',
    group: 'Cluster',
    summary: 'this node, its cluster and member health',
    run: status,
  },
  {
    name: 'deploy',
    args: '-c FILE [STACK]',
    group: 'Stacks',
    summary: 'deploy a compose file as a stack, with rollout progress',
  },
  { name: 'ls', group: 'Stacks', summary: 'list stacks and their services' },
  {
    name: 'ps',
    args: '[STACK|SERVICE]',
    group: 'Stacks',
    summary: 'list tasks: node, state, reason, since',
  },
  { name: 'scale', args: 'SERVICE=N', group: 'Stacks', summary: 'change the number of replicas' },
  { name: 'rm', args: 'STACK', group: 'Stacks', summary: 'remove a stack and all its containers' },
  {
    name: 'logs',
    args: 'SERVICE [-f]',
    group: 'Stacks',
    summary: 'logs from every node, prefixed by task',
  },
];

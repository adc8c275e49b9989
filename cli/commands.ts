import { decodeJoinToken } from '../mesh/pki/token.js';

/** A mistake of the user's: printed as one line, without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command {
  name: string;
  args?: string;
  group: 'Cluster' | 'Stacks' | 'Other';
  summary: string;
  /** Absent while the command is still coming. */
  run?: (args: string[]) => Promise<number> | number;
  /** Checks run before a coming command says it is not built yet, so input errors show now. */
  validate?: (args: string[]) => void;
}

export const COMMANDS: Command[] = [
  {
    name: 'init',
    group: 'Cluster',
    summary: 'create a cluster on this machine and print a join token',
  },
  {
    name: 'join',
    args: 'TOKEN',
    group: 'Cluster',
    summary: 'join this machine to the cluster a token names',
    validate: ([token]) => {
      if (!token)
        throw new UsageError('join needs the token printed by "mesh init" or "mesh token"');
      decodeJoinToken(token);
    },
  },
  {
    name: 'agent',
    group: 'Cluster',
    summary: 'run the agent again from an existing data directory',
  },
  {
    name: 'token',
    args: '[--rotate]',
    group: 'Cluster',
    summary: 'print the join token; --rotate invalidates old ones',
  },
  {
    name: 'node',
    args: 'SUBCOMMAND',
    group: 'Cluster',
    summary: 'ls, inspect, drain, activate, label or rm nodes',
  },
  { name: 'status', group: 'Cluster', summary: 'leader, members and health at a glance' },
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

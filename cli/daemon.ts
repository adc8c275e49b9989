import { Agent, DEFAULT_PORT } from '../agent/agent.js';
import {
  DATA_DIR,
  dataDirOf,
  defaultAdvertise,
  durationOf,
  labelsOf,
  type Options,
  parse,
  portOf,
  UsageError,
} from './args.js';

const AGENT_FLAGS: Options = {
  ...DATA_DIR,
  advertise: { type: 'string' },
  port: { type: 'string' },
  label: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'reschedule-after': { type: 'string' },
};

/** Runs until SIGINT or SIGTERM, then leaves the cluster gracefully; a second signal exits at once. */
function runUntilSignalled(agent: Agent): Promise<number> {
  if (agent.dockerMissing) process.stdout.write(`mesh: note: ${agent.dockerMissing}\n`);
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      agent.log.info({ signal }, 'signal received');
      agent.shutdown().then(
        () => resolve(0),
        (error: Error) => {
          agent.log.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

function agentOptions(command: string, args: string[]) {
  const { values, positionals } = parse(command, args, AGENT_FLAGS);
  return {
    positionals,
    options: {
      dataDir: dataDirOf(values),
      advertise: (values.advertise as string | undefined) ?? defaultAdvertise(),
      port: portOf(values, DEFAULT_PORT),
      labels: labelsOf(values),
      logLevel: values['log-level'] as string | undefined,
      rescheduleAfterMs: durationOf(values['reschedule-after'], '--reschedule-after'),
    },
  };
}

export async function init(args: string[]): Promise<number> {
  const { options } = agentOptions('init', args);
  const agent = await Agent.init(options);
  process.stdout.write(
    `mesh: created a cluster; this node is ${agent.nodeId} at ${agent.address}\n`,
  );
  // The token admits machines to the cluster: shown to a person, never written into a service log.
  process.stdout.write(
    process.stdout.isTTY
      ? `Join other machines with:\n  npx mesh join ${agent.joinToken()}\n("mesh token" prints it again)\n`
      : 'mesh: the join token is not printed here (not a terminal); "mesh token" prints it\n',
  );
  return runUntilSignalled(agent);
}

export async function join(args: string[]): Promise<number> {
  const { options, positionals } = agentOptions('join', args);
  const [token] = positionals;
  if (!token) throw new UsageError('join needs the token printed by "mesh init" or "mesh token"');
  const agent = await Agent.join(token, options);
  process.stdout.write(`mesh: joined as ${agent.nodeId} at ${agent.address}\n`);
  return runUntilSignalled(agent);
}

export async function agent(args: string[]): Promise<number> {
  const { values } = parse('agent', args, { ...DATA_DIR, 'log-level': { type: 'string' } });
  const running = await Agent.restart({
    dataDir: dataDirOf(values),
    logLevel: values['log-level'] as string | undefined,
  });
  process.stdout.write(`mesh: agent ${running.nodeId} running at ${running.address}\n`);
  return runUntilSignalled(running);
}

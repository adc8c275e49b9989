import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { Agent, DEFAULT_PORT, RESTART_GRACE_MS } from '../agent/agent.js';
import { DEFAULT_NETWORK_SETTINGS, type NetworkSettings, parseCidr } from '../mesh/api/network.js';
import type { LogFormat } from '../mesh/log.js';
import { splitHostPort } from '../mesh/transport/address.js';
import { HTTP_LIMIT_KEYS, type HttpLimits } from '../proxy/http/limits.js';
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
import { RESTORE_FLAGS, restoreOf } from './backup.js';
import { checkInstallable, installService, RESTART_EXIT_CODE } from './install.js';
import { invocation, joinInstructions } from './invocation.js';
import { parseBytes, parseDuration } from './stackfile/values.js';

const AGENT_FLAGS: Options = {
  ...DATA_DIR,
  advertise: { type: 'string' },
  port: { type: 'string' },
  label: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'reschedule-after': { type: 'string' },
  'dns-port': { type: 'string' },
  'dns-upstream': { type: 'string', multiple: true },
  'http-port': { type: 'string' },
  'https-port': { type: 'string' },
  'trusted-proxy': { type: 'string', multiple: true },
  'http-timeout': { type: 'string' },
  'udp-timeout': { type: 'string' },
  'http-limit': { type: 'string', multiple: true },
  'metrics-addr': { type: 'string' },
  'ingress-workers': { type: 'string' },
  install: { type: 'boolean' },
};

/** The token can come from a file instead of the command line (see hideTokens in main.ts). */
const JOIN_FLAGS: Options = { ...AGENT_FLAGS, 'token-file': { type: 'string' } };

/** Cluster-wide settings: chosen once, by the node that creates the cluster. */
const INIT_FLAGS: Options = {
  ...AGENT_FLAGS,
  'cert-validity': { type: 'string' },
  'service-range': { type: 'string' },
  'bridge-range': { type: 'string' },
  autolock: { type: 'boolean' },
  ...RESTORE_FLAGS,
};

/**
 * Runs until a signal. SIGINT or SIGTERM: it leaves the cluster gracefully, its tasks stopped
 * (placed elsewhere). SIGHUP: it stops to restart, its tasks left running for the next run to
 * take back (an upgrade). A second signal exits at once. The process exits from here: the
 * promise never settles.
 */
function runUntilSignalled(agent: Agent): Promise<never> {
  if (agent.dockerMissing) process.stdout.write(`mesh: note: ${agent.dockerMissing}\n`);
  if (agent.hostPrivilegesMissing)
    process.stdout.write(`mesh: note: ${agent.hostPrivilegesMissing}\n`);
  return new Promise(() => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      agent.log.info({ signal }, 'signal received');
      const restart = signal === 'SIGHUP';
      (restart ? agent.stopForRestart().then(sayRestart) : agent.shutdown())
        .then(
          () => (restart ? RESTART_EXIT_CODE : 0),
          (error: Error) => {
            agent.log.error({ err: error }, 'shutdown failed');
            return 1;
          },
        )
        .then((code) => {
          // The agent closed what it made, so the process exits now. Left to end by itself, it
          // ran Node's own teardown, which waits for every handle to close: one whose close never
          // came (a socket reset in the tick its FIN was queued, see splice.ts) spun a core there
          // for ever.
          const holding = process.getActiveResourcesInfo();
          if (holding.length > 0) agent.log.debug({ holding }, 'still open as the agent exits');
          process.exit(code);
        });
    };
    // A fault nothing caught (a bug) ends the agent, as it would Node, but with one structured
    // line naming it in the agent's log, rather than a bare stack on standard error; its
    // supervisor (systemd's Restart=on-failure) starts it again.
    process.on('uncaughtException', (error, origin) => {
      agent.log.fatal({ err: error, origin }, 'the agent met an error nothing handled; exiting');
      process.exit(1);
    });
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGHUP', () => stop('SIGHUP'));
  });
}

function sayRestart(): void {
  const mesh = invocation(process.argv[1] ?? '', process.env.PATH);
  process.stdout.write(
    `mesh: stopped to restart; its tasks keep running, and stay on this node for ${RESTART_GRACE_MS / 1000} s: start it again with "${mesh} agent" (with the same --data-dir), as systemd does by itself\n`,
  );
}

function agentOptions(command: 'init' | 'join', args: string[]) {
  const { values, positionals } = parse(
    command,
    args,
    command === 'init' ? INIT_FLAGS : JOIN_FLAGS,
  );
  return {
    positionals,
    values,
    options: {
      dataDir: dataDirOf(values),
      advertise: (values.advertise as string | undefined) ?? defaultAdvertise(),
      port: portOf(values, DEFAULT_PORT),
      labels: labelsOf(values),
      logLevel: values['log-level'] as string | undefined,
      logFormat: logFormatOf(values),
      rescheduleAfterMs: durationOf(values['reschedule-after'], '--reschedule-after'),
      dnsPort: values['dns-port'] === undefined ? undefined : portOf(values, 53, 'dns-port'),
      dnsUpstreams: upstreamsOf(values['dns-upstream'] as string[] | undefined),
      httpPort: values['http-port'] === undefined ? undefined : portOf(values, 80, 'http-port'),
      httpsPort: values['https-port'] === undefined ? undefined : portOf(values, 443, 'https-port'),
      trustedProxies: trustedOf(values['trusted-proxy'] as string[] | undefined),
      httpTimeoutMs: durationOf(values['http-timeout'], '--http-timeout'),
      udpTimeoutMs: durationOf(values['udp-timeout'], '--udp-timeout'),
      httpLimits: httpLimitsOf(values['http-limit'] as string[] | undefined),
      metricsAddress: metricsAddressOf(values['metrics-addr'] as string | undefined),
      ingressWorkers: ingressWorkersOf(values['ingress-workers'] as string | undefined),
      network: command === 'init' ? networkOf(values) : undefined,
      certValidityMs: certValidityOf(values),
      autolock: values.autolock === true,
    },
  };
}

/** --cert-validity DURATION: at least a minute, so that renewal (at two thirds) can keep up. */
function certValidityOf(values: Record<string, unknown>): number | undefined {
  const ms = durationOf(values['cert-validity'], '--cert-validity');
  if (ms !== undefined && ms < 60_000)
    throw new UsageError(`--cert-validity: at least 1m (certificates renew at two thirds of it)`);
  return ms;
}

/** The most ingress workers a node runs: more processes than this only share the same cores. */
const MAX_INGRESS_WORKERS = 64;

/** --ingress-workers N: how many processes serve the HTTP ingress; unset: one per core. */
function ingressWorkersOf(given: string | undefined): number | undefined {
  if (given === undefined) return undefined;
  const workers = Number(given);
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_INGRESS_WORKERS)
    throw new UsageError(
      `--ingress-workers: a number of processes from 1 to ${MAX_INGRESS_WORKERS}, got "${given}"`,
    );
  return workers;
}

/** --metrics-addr HOST:PORT or none; unset: the advertise address on 9464. */
function metricsAddressOf(given: string | undefined): string | null | undefined {
  if (given === undefined) return undefined;
  if (given === 'none') return null;
  const { host, port } = splitHostPort(given);
  if (!isIP(host) || !Number.isInteger(port) || port < 1 || port > 65_535)
    throw new UsageError(`--metrics-addr: "${given}" is not HOST:PORT (an IP address) or none`);
  return given;
}

/** --log-format json|pretty; unset: pretty on a terminal, JSON otherwise. */
function logFormatOf(values: Record<string, unknown>): LogFormat | undefined {
  const format = values['log-format'] as string | undefined;
  if (format === undefined || format === 'json' || format === 'pretty') return format;
  throw new UsageError(`--log-format: "${format}" is not json or pretty`);
}

function networkOf(values: Record<string, unknown>): NetworkSettings {
  const settings = { ...DEFAULT_NETWORK_SETTINGS };
  for (const [flag, key] of [
    ['service-range', 'serviceRange'],
    ['bridge-range', 'bridgeRange'],
  ] as const) {
    const text = values[flag] as string | undefined;
    if (text === undefined) continue;
    try {
      parseCidr(text);
    } catch (error) {
      throw new UsageError(`--${flag}: ${(error as Error).message}`);
    }
    settings[key] = text;
  }
  return settings;
}

/** --http-limit KEY=VALUE (repeatable): the ingress's timeouts and limits, each by name. */
function httpLimitsOf(values: string[] | undefined): Partial<HttpLimits> | undefined {
  if (!values) return undefined;
  const limits: Partial<HttpLimits> = {};
  const keys = Object.keys(HTTP_LIMIT_KEYS).join(', ');
  for (const value of values) {
    const eq = value.indexOf('=');
    const known = HTTP_LIMIT_KEYS[value.slice(0, eq)];
    if (eq <= 0 || !known)
      throw new UsageError(`--http-limit takes KEY=VALUE with KEY one of ${keys}, not "${value}"`);
    const text = value.slice(eq + 1);
    let amount: number;
    try {
      amount =
        known.kind === 'duration'
          ? parseDuration(text)
          : known.kind === 'bytes'
            ? parseBytes(text)
            : Number(text);
    } catch (error) {
      throw new UsageError(`--http-limit ${value}: ${(error as Error).message}`);
    }
    if (!Number.isSafeInteger(amount) || amount < 1)
      throw new UsageError(`--http-limit ${value}: needs a positive ${known.kind}`);
    limits[known.field] = amount;
  }
  return limits;
}

/** --trusted-proxy CIDR (repeatable); a bare address is a /32. */
function trustedOf(values: string[] | undefined): string[] | undefined {
  return values?.map((value) => {
    const cidr = value.includes('/') ? value : `${value}/32`;
    try {
      parseCidr(cidr, 32);
    } catch (error) {
      throw new UsageError(`--trusted-proxy: ${(error as Error).message}`);
    }
    return cidr;
  });
}

/** --dns-upstream HOST[:PORT] (repeatable), or "none": names outside the zone get SERVFAIL. */
function upstreamsOf(values: string[] | undefined): string[] | undefined {
  if (!values) return undefined;
  if (values.includes('none')) return [];
  return values.map((value) => {
    const withPort = value.includes(':') ? value : `${value}:53`;
    if (!/^\d+\.\d+\.\d+\.\d+:\d+$/.test(withPort))
      throw new UsageError(
        `--dns-upstream: "${value}" is not an IPv4 address with an optional :PORT`,
      );
    return withPort;
  });
}

export async function init(args: string[]): Promise<number> {
  const { options, values } = agentOptions('init', args);
  const explicitRanges =
    values['service-range'] !== undefined || values['bridge-range'] !== undefined;
  const restore = await restoreOf(values, options.network as NetworkSettings, explicitRanges);
  if (values.install) {
    checkInstallable();
    return installService(await Agent.prepare({ init: { ...options, restore } }));
  }
  const agent = await Agent.init({ ...options, restore });
  process.stdout.write(
    `mesh: created a cluster${restore ? ' from the backup' : ''}; this node is ${agent.nodeId} at ${agent.address}\n`,
  );
  // The token admits machines to the cluster: shown to a person, never written into a service log.
  process.stdout.write(
    process.stdout.isTTY
      ? joinInstructions(
          (await agent.joinToken()) ?? '(not ready yet: run "mesh token")',
          invocation(process.argv[1] ?? '', process.env.PATH),
        )
      : 'mesh: the join token is not printed here (not a terminal); "mesh token" prints it\n',
  );
  if (options.autolock)
    process.stdout.write(
      process.stdout.isTTY
        ? `Autolock is on. Keep this unlock key safe: a manager that restarts stays locked until "mesh unlock" is given it:\n  ${agent.unlockKey}\n("mesh unlock-key" prints it again)\n`
        : 'mesh: autolock is on; the unlock key is not printed here (not a terminal): run "mesh unlock-key" now and keep it safe\n',
    );
  return runUntilSignalled(agent);
}

/** The join token: the argument, --token-file F (its first line; "-": stdin), or $MESH_JOIN_TOKEN. */
async function joinTokenOf(
  argument: string | undefined,
  file: string | undefined,
): Promise<string> {
  if (file !== undefined) {
    const text = await readFile(file === '-' ? '/dev/stdin' : file, 'utf8').catch(
      (error: Error) => {
        throw new UsageError(`--token-file: ${error.message}`);
      },
    );
    return text.split('\n')[0]?.trim() ?? '';
  }
  const token = argument ?? process.env.MESH_JOIN_TOKEN;
  if (!token)
    throw new UsageError(
      'join needs the token printed by "mesh init" or "mesh token": as the argument, --token-file F, or $MESH_JOIN_TOKEN',
    );
  return token;
}

export async function join(args: string[]): Promise<number> {
  const { options, positionals, values } = agentOptions('join', args);
  const token = await joinTokenOf(positionals[0], values['token-file'] as string | undefined);
  if (values.install) {
    checkInstallable();
    return installService(await Agent.prepare({ join: options, token }));
  }
  const agent = await Agent.join(token, options);
  process.stdout.write(
    agent.returned
      ? `mesh: came back as ${agent.nodeId} at ${agent.address}, with a new certificate; its labels, state and tasks are kept, and so are the settings in its data dir\n`
      : `mesh: joined as ${agent.nodeId} at ${agent.address}\n`,
  );
  return runUntilSignalled(agent);
}

export async function agent(args: string[]): Promise<number> {
  const { values } = parse('agent', args, {
    ...DATA_DIR,
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'force-new-cluster': { type: 'boolean' },
  });
  const running = await Agent.restart({
    dataDir: dataDirOf(values),
    logLevel: values['log-level'] as string | undefined,
    logFormat: logFormatOf(values),
    forceNewCluster: values['force-new-cluster'] === true,
  });
  process.stdout.write(`mesh: agent ${running.nodeId} running at ${running.address}\n`);
  return runUntilSignalled(running);
}

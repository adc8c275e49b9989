/**
 * A published port that no node can serve fails the deploy, naming who holds it, instead of
 * "converged" with nothing answering; then the listings' -q, --filter and --format on the stack
 * that runs. One agent, loopback block 127.0.72.0/24, a process task.
 */
import { createServer } from 'node:net';
import test from 'ava';
import { type AgentProcess, LocalCluster, meshJson, meshOn } from '../helpers/local-cluster.js';
import { bodyOnceAnswering } from '../helpers/poll.js';

const HOST = '127.0.72.1';
const TAKEN = 18_072;
const FREE = 18_073;
const cluster = await LocalCluster.create('published-taken');
test.after.always(() => cluster.close());

const SERVER =
  "require('node:http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, process.env.MESH_HOST)";
const stack = (published: number) =>
  `services:\n  web:\n    command: ${JSON.stringify([process.execPath, '-e', SERVER])}\n    ports: ["${published}:8080"]\n    x-mesh: { runtime: process }\n`;

let agent: AgentProcess;

test.serial(
  'a deploy whose published port is taken on every node fails, naming the holder; an ingress port taken is warned of',
  async (t) => {
    // The published port, and the node's HTTP ingress port (80, the default).
    for (const port of [TAKEN, 80]) {
      const squatter = createServer((socket) => socket.end('squatter\n'));
      await new Promise<void>((resolve) => squatter.listen(port, HOST, resolve));
      t.teardown(() => squatter.close());
    }
    [agent] = (await cluster.start([HOST], 'taken')) as [AgentProcess];
    const deployed = await meshOn(
      agent,
      'deploy',
      '-c',
      cluster.file('taken.yml', stack(TAKEN)),
      'taken',
    );
    t.is(deployed.code, 1, deployed.stderr);
    t.regex(
      deployed.stderr,
      new RegExp(
        `mesh: published port ${TAKEN} of taken\\.web is served on no node \\(${TAKEN} on n[0-9a-f]+: the port is taken on this node by \\S+ \\(pid ${process.pid}\\)\\): free it there, or publish another port`,
      ),
    );
    // Published elsewhere, it converges and answers.
    const moved = await meshOn(
      agent,
      'deploy',
      '-c',
      cluster.file('free.yml', stack(FREE)),
      'taken',
    );
    t.is(moved.code, 0, moved.stderr);
    // The deploy went on once the node had its word on the port, not at the end of a wait.
    t.notRegex(moved.stderr, /not every node reported/);
    const holder = `the port is taken on this node by \\S+ \\(pid ${process.pid}\\)`;
    t.regex(
      moved.stderr,
      new RegExp(
        `mesh: warning: taken\\.web is not served on port 80 on n[0-9a-f]+: HTTP ingress: ${holder}\n`,
      ),
    );
    const [node] = await meshJson<Array<{ ingress: string; ingressUnserved: unknown[] }>>(
      agent,
      'node',
      'ls',
    );
    t.like(node, { ingress: 'listening', ingressUnserved: [{ port: 80 }] });
    t.regex(
      (await meshOn(agent, 'node', 'ls')).stdout,
      / listening \(not on 80\) /,
      'mesh node ls says so',
    );
    const stacks = await meshJson<Array<{ services: Array<{ portsUnreported: number[] }> }>>(
      agent,
      'ls',
    );
    t.deepEqual(
      stacks.flatMap((s) => s.services.map((v) => v.portsUnreported)),
      [[]],
    );
    t.is(await bodyOnceAnswering(`http://${HOST}:${FREE}/`, 'the free port'), 'ok');
  },
);

test.serial('listings print IDs with -q, keep rows with --filter, and fill --format', async (t) => {
  const ids = (await meshOn(agent, 'ps', 'taken', '-q')).stdout.trim().split('\n');
  t.is(ids.length, 1);
  t.regex(ids[0] ?? '', /^taken\.web\.1\.[0-9a-f]+$/);
  const formatted = await meshOn(agent, 'ls', '--format', '{{.ID}} {{.Ports}} {{.Stack}}');
  t.is(formatted.stdout, `taken.web ${FREE}->8080/tcp taken\n`);
  const none = await meshOn(agent, 'ps', 'taken', '--filter', 'state=failed');
  t.is(none.stdout.trim().split('\n').length, 1, 'the header alone');
  const nodes = await meshOn(agent, 'node', 'ls', '-q', '--filter', 'status=alive');
  t.regex(nodes.stdout, /^n[0-9a-f]+\n$/);
  const bad = await meshOn(agent, 'ps', '--filter', 'colour=red');
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--filter: no field "colour"; the fields are id, service,/);
});

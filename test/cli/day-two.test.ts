/**
 * The README's day-two walkthrough, run as written: its stack file and its commands, in bash
 * with `set -e`, against one agent on a real engine and a private registry with a login
 * (loopback block 127.0.73.0/24). A README that drifts from what mesh does fails here.
 */
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { StatusResponse } from '../../agent/control/api.js';
import { removeLabelled } from '../helpers/containers.js';
import { dockerTest } from '../helpers/docker.js';
import { type AgentProcess, LocalCluster, meshJson } from '../helpers/local-cluster.js';
import { startRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const cluster = await LocalCluster.create('day-two');

/** The fenced block right after the README's `<!-- day-two:NAME -->` marker. */
function block(name: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = readme.indexOf(`<!-- day-two:${name} -->`);
  if (marker < 0) throw new Error(`README.md has no day-two:${name} block`);
  const start = readme.indexOf('\n', readme.indexOf('```', marker)) + 1;
  return readme.slice(start, readme.indexOf('```', start));
}

dockerTest('the README day-two walkthrough runs as written', async (t, docker) => {
  let clusterId = '';
  const token = 'team-Token-9a7f31';
  const registry = await startRegistry(join(cluster.root, 'registry'), '127.0.73.9', 5000, {
    username: 'team',
    password: token,
  });
  t.teardown(async () => {
    await cluster.close();
    if (clusterId) await removeLabelled(docker, `mesh.cluster=${clusterId}`);
    await registry.close();
  });
  await registry.push('mesh-test/busybox:latest', 'team/web:2');
  const [agent] = (await cluster.start(['127.0.73.1'], 'day')) as [AgentProcess];
  clusterId = (await meshJson<StatusResponse>(agent, 'status')).clusterId;
  writeFileSync(join(cluster.root, 'shop.yml'), block('file'));
  // `mesh` as a reader has it on the PATH; the agent's data dir as $MESH_DATA_DIR.
  const bin = join(cluster.root, 'bin');
  await run('mkdir', ['-p', bin]);
  writeFileSync(
    join(bin, 'mesh'),
    `#!/bin/sh\nexec ${process.execPath} ${join(ROOT, 'dist/cli/main.js')} "$@"\n`,
  );
  chmodSync(join(bin, 'mesh'), 0o755);
  const { stdout, stderr } = await run('bash', ['-e', '-c', block('commands')], {
    cwd: cluster.root,
    env: {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      MESH_DATA_DIR: agent.dataDir,
      REGISTRY: registry.host,
      TOKEN: token,
    },
    timeout: 100_000,
  });
  const said = `${stdout}\n${stderr}`;
  t.regex(said, /mesh: stack shop converged/);
  t.regex(said, /mesh: updated shop\.web \(version 2\)/);
  t.regex(
    said,
    /^shop\.web\.\d\.[0-9a-f]+ v1 shutdown shutdown$/m,
    'ps -a shows the replaced tasks',
  );
  t.regex(said, /\| serving, GREETING=hello$/m, "a replaced task's output");
  t.regex(said, /refused on every node: rolled back by itself/);
  t.regex(
    said,
    /^shop\.web\.\d\.[0-9a-f]+ failed: image mesh-test\/busybox:missing is not on this node, and pull_policy is never$/m,
    'the failed version 3 in ps -a, with why',
  );
  t.regex(said, /version 4, updated/, 'inspect: the rollback');
  t.regex(said, /mesh: login for 127\.0\.73\.9:5000 stored sealed, as team/);
  t.regex(said, /mesh: updated shop\.web \(version 5\)/, 'the private image pulled and running');
  t.regex(said, /^127\.0\.73\.9:5000\s+team\s+.*shop\.web$/m, 'registry ls');
  t.regex(said, /mesh: stack shop removed/);
  t.deepEqual(
    await docker.listContainers({ all: true, filters: { label: [`mesh.cluster=${clusterId}`] } }),
    [],
    'nothing of the stack is left',
  );
});

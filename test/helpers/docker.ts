import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import Docker from 'dockerode';
import { pingEngine } from '../../agent/runtime/docker.js';

export const TEST_IMAGE = 'mesh-test/busybox:latest';
const BUILD_SCRIPT = fileURLToPath(
  new URL('../../../test/images/build-busybox.sh', import.meta.url),
);

type Engine = { docker: Docker } | { skip: string };

async function reachEngine(): Promise<Engine> {
  const docker = new Docker();
  try {
    await pingEngine(docker);
  } catch (error) {
    const reason = `no Docker Engine reachable (${(error as Error).message})`;
    if (process.env.MESH_REQUIRE_DOCKER === '1') {
      throw new Error(`MESH_REQUIRE_DOCKER=1 but ${reason}`);
    }
    return { skip: reason };
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    // Not built on this machine yet: build it the same way CI does.
    const built = spawnSync('bash', [BUILD_SCRIPT, TEST_IMAGE], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`building ${TEST_IMAGE} failed: ${built.stderr}`);
  }
  return { docker };
}

export const engine: Engine = await reachEngine();

/**
 * A test that needs a real Docker Engine. Without one it is skipped, and its title says why;
 * under MESH_REQUIRE_DOCKER=1 (CI) a missing engine fails the run instead.
 */
export function dockerTest(
  title: string,
  body: (t: ExecutionContext, docker: Docker) => Promise<void>,
): void {
  if ('skip' in engine) test.skip(`${title} [skipped: ${engine.skip}]`, () => {});
  else test.serial(title, (t) => body(t, engine.docker));
}

/** Removes every container carrying the label, whatever state it is in. */
export async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true })));
}

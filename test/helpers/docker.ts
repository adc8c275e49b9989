import test, { type ExecutionContext } from 'ava';
import Docker from 'dockerode';
import { pingEngine } from '../../agent/runtime/docker.js';
import { ensureTestImage, TEST_IMAGE } from '../../examples/test-image.js';

export { TEST_IMAGE };

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
  await ensureTestImage(docker);
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

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import { engineHas } from '../agent/runtime/engine-has.js';

/** The image the demo, the tests and the benchmarks run: busybox, built here, never pulled. */
export const TEST_IMAGE = 'mesh-test/busybox:latest';

const BUILD_SCRIPT = fileURLToPath(new URL('../../test/images/build-busybox.sh', import.meta.url));

/** Builds the image from this machine's busybox-static (`docker import`) unless it is there. */
export async function ensureTestImage(docker: Docker): Promise<void> {
  if (await engineHas(docker.getImage(TEST_IMAGE).inspect())) return;
  const built = spawnSync('bash', [BUILD_SCRIPT, TEST_IMAGE], { encoding: 'utf8' });
  if (built.status !== 0)
    throw new Error(
      `building ${TEST_IMAGE} failed: ${built.stderr.trim() || built.error?.message}`,
    );
}

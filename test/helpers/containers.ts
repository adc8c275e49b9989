import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Docker from 'dockerode';

export { removeLabelled } from '../../examples/leftovers.js';

const run = promisify(execFile);

/** The container of the (one) running task of a service of the cluster. */
export async function containerOf(
  docker: Docker,
  clusterId: string,
  service: string,
): Promise<Docker.Container> {
  const [found] = await docker.listContainers({
    filters: {
      label: [`mesh.cluster=${clusterId}`, `mesh.service=${service}`],
      status: ['running'],
    },
  });
  if (!found) throw new Error(`no running container of ${service}`);
  return docker.getContainer(found.Id);
}

/** Runs a shell command in the container; its output (stdout and stderr) and exit code. */
export async function sh(
  container: Docker.Container,
  script: string,
): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run('docker', ['exec', container.id, 'sh', '-c', script], {
      timeout: 15_000,
    });
    return { out: stdout + stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { out: (e.stdout ?? '') + (e.stderr ?? ''), code: e.code ?? -1 };
  }
}

/** An HTTP GET through busybox nc (busybox wget crashes in a static build without NSS). */
export const httpGet = (host: string, port: number, path = '/') =>
  `printf 'GET ${path} HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`;

/**
 * An image made here from a local one (the test image unless `from` says) plus Dockerfile lines
 * (`EXPOSE 5432`): nothing is pulled (the test removes it with `docker rmi`).
 */
export async function buildImage(
  name: string,
  lines: string[],
  from = 'mesh-test/busybox:latest',
): Promise<void> {
  const child = execFile('docker', ['build', '-q', '-t', name, '-']);
  child.stdin?.end([`FROM ${from}`, ...lines].join('\n'));
  await new Promise<void>((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`docker build ${name} exited ${code}`)),
    ),
  );
}

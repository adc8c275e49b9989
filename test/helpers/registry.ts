/**
 * A private registry for tests: Debian's docker-registry (the Distribution registry) on a
 * loopback address of the test's own, with a login (htpasswd, bcrypt), plain HTTP (the engine
 * takes 127.0.0.0/8 registries as insecure ones). Images are pushed with a docker client config of
 * its own, so the machine's `docker login`s are never touched.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './poll.js';

const run = promisify(execFile);

export interface TestRegistry {
  /** HOST:PORT, as image references name it. */
  host: string;
  /** Pushes a local image as `${host}/${name}` and removes that tag here: only a pull brings it back. */
  push(localImage: string, name: string): Promise<string>;
  close(): Promise<void>;
}

function statusOf(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/v2/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

export async function startRegistry(
  dir: string,
  address: string,
  port: number,
  login: { username: string; password: string },
): Promise<TestRegistry> {
  await mkdir(dir, { recursive: true });
  const { stdout: htpasswd } = await run('htpasswd', [
    '-Bbn',
    login.username,
    login.password,
  ]).catch((error: Error) => {
    throw new Error(`htpasswd (Debian's apache2-utils) is needed: ${error.message}`);
  });
  await writeFile(join(dir, 'htpasswd'), htpasswd);
  await writeFile(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: {level: warn}',
      `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}}`,
      `http: {addr: "${address}:${port}", secret: mesh-test}`,
      `auth: {htpasswd: {realm: mesh-test, path: ${join(dir, 'htpasswd')}}}`,
      '',
    ].join('\n'),
  );
  const server: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let said = '';
  server.stderr?.on('data', (chunk: Buffer) => {
    said = (said + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const spawned = new Promise<void>((resolve, reject) => {
    server.once('spawn', resolve);
    server.once('error', (error) =>
      reject(new Error(`docker-registry (Debian's docker-registry) is needed: ${error.message}`)),
    );
  });
  await spawned;
  await eventually(async () => (await statusOf(address, port)) === 401, {
    what: `the registry at ${address}:${port} asking for a login (it said: ${said})`,
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  const host = `${address}:${port}`;
  const config = join(dir, 'docker-config');
  const docker = (...args: string[]) => run('docker', ['--config', config, ...args]);
  return {
    host,
    async push(localImage, name) {
      const image = `${host}/${name}`;
      await run(
        'sh',
        ['-c', 'printf %s "$P" | docker --config "$C" login -u "$U" --password-stdin "$H"'],
        { env: { ...process.env, P: login.password, C: config, U: login.username, H: host } },
      );
      await docker('tag', localImage, image);
      await docker('push', '-q', image);
      await docker('rmi', image);
      await docker('logout', host);
      return image;
    },
    /** Stops the registry, and removes what the engine pulled from it. */
    async close() {
      server.kill('SIGTERM');
      await exited;
      const { stdout } = await run('docker', [
        'images',
        '--format',
        '{{.Repository}}:{{.Tag}}',
        '--filter',
        `reference=${host}/*/*`,
      ]);
      const pulled = stdout.split('\n').filter((line) => line.startsWith(`${host}/`));
      if (pulled.length > 0) await run('docker', ['rmi', ...pulled]);
    },
  };
}

/**
 * mesh as a user installs it: the packed tarball, installed into an empty directory with npm,
 * runs from there with only its dependencies (no dev dependencies, no sources, no build).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('the packed tarball installs into an empty directory and its mesh runs there', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mesh-install-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // dist is already built (npm test builds first): packing only reads it.
  const { stdout: packed } = await run(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    { cwd: ROOT },
  );
  const [{ filename, files }] = JSON.parse(packed) as [
    { filename: string; files: Array<{ path: string }> },
  ];
  t.false(
    files.some((f) => f.path.startsWith('dist/test/') || f.path.endsWith('.ts')),
    'no tests and no sources in the package',
  );
  const app = join(dir, 'app');
  await run('mkdir', [app]);
  await writeFile(join(app, 'package.json'), '{"private": true}\n');
  await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, filename)],
    { cwd: app, timeout: 100_000 },
  );
  const mesh = (...args: string[]) =>
    run(join(app, 'node_modules', '.bin', 'mesh'), args, { cwd: app });
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  t.is((await mesh('--version')).stdout.trim(), version);
  t.regex((await mesh('--help')).stdout, /^mesh .* a small container orchestrator/);
  // A stack file checked with the compiled Compose validator, from the installed package alone.
  await writeFile(join(app, 'stack.yml'), 'services:\n  web:\n    image: nginx\n');
  const dry = await mesh(
    'deploy',
    '-c',
    'stack.yml',
    'app',
    '--dry-run',
    '--json',
    '--data-dir',
    join(dir, 'none'),
  );
  t.like(JSON.parse(dry.stdout), { stack: 'app', checkedBy: 'file' });
});

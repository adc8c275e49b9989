import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { encodeJoinToken } from '../../mesh/pki/token.js';
import { eventually } from '../helpers/poll.js';

const main = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

function mesh(...args: string[]) {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('in a checkout, npx mesh runs this mesh, as the demo and the README say', (t) => {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string;
  };
  // npx installs the checkout into its cache the first time, which runs the prepare script: with
  // a cache of its own, this test is always that first time. Rebuilding there would take dist away
  // from every agent running from it (as it did to the other tests in one CI run).
  const cache = mkdtempSync(join(tmpdir(), 'mesh-npx-cache-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const built = statSync(main);
  // --no-install: nothing is fetched; it is the package's own bin or nothing.
  const result = spawnSync('npx', ['--no-install', 'mesh', 'version'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, npm_config_cache: cache },
  });
  t.is(result.stdout.trim(), version, result.stderr);
  const after = statSync(main);
  t.deepEqual([after.ino, after.mtimeMs], [built.ino, built.mtimeMs], 'dist was not rebuilt');
});

test('--help lists every command', (t) => {
  const { code, stdout } = mesh('--help');
  t.is(code, 0);
  for (const name of [
    'init',
    'join',
    'agent',
    'token',
    'node',
    'status',
    'deploy',
    'ls',
    'ps',
    'scale',
    'rm',
    'logs',
  ]) {
    t.regex(stdout, new RegExp(`^  ${name}\\b.*$`, 'm'), `help lists ${name}`);
  }
  t.notRegex(stdout, /\(coming\)/);
});

test('--help works on every command and subcommand, with its options', (t) => {
  const cases: Array<[string[], RegExp[]]> = [
    [
      ['init', '--help'],
      [
        /^Usage: mesh init \[options\]$/m,
        /--advertise VALUE\s+the address other nodes/,
        /--label VALUE/,
      ],
    ],
    [
      ['join', '-h'],
      [/^Usage: mesh join TOKEN \| --token-file F \[options\]$/m, /--reschedule-after VALUE/],
    ],
    [
      ['deploy', '--help'],
      [/-c, --compose-file VALUE\s+the compose or stack file/, /-d, --detach/, /--prune/],
    ],
    [['ps', '--help'], [/-a, --all\s+with stopped tasks too/]],
    [
      ['logs', '--help'],
      [/-f, --follow/, /-n, --tail VALUE/],
    ],
    [['token', '--help'], [/--rotate\s+make a new join secret/]],
    [
      ['node', '--help'],
      [/^Usage: mesh node <command>/m, /node rm NODE\.\.\.\s+remove a node for good/],
    ],
    [
      ['node', 'rm', '--help'],
      [
        /^Usage: mesh node rm NODE\.\.\. \[options\]$/m,
        /-f, --force\s+remove a node that is still alive/,
      ],
    ],
    [
      ['node', 'label', '--help'],
      [/^Usage: mesh node label NODE KEY=VALUE\.\.\. KEY-\.\.\. \[options\]$/m],
    ],
  ];
  for (const [args, patterns] of cases) {
    const { code, stdout, stderr } = mesh(...args);
    t.is(code, 0, `mesh ${args.join(' ')}: ${stderr}`);
    for (const pattern of patterns) t.regex(stdout, pattern, `mesh ${args.join(' ')}`);
    t.regex(stdout, /-h, --help\s+this text/);
  }
});

test('a mangled join token gets one clear line and no stack trace', (t) => {
  const good = encodeJoinToken({
    clusterId: 'c1',
    seeds: ['127.0.0.1:7946'],
    caPin: '0'.repeat(64),
    secret: 'A'.repeat(43),
  });
  const { code, stderr } = mesh('join', good.slice(0, -3));
  t.is(code, 1);
  t.is(stderr, 'mesh: join token is damaged (its checksum does not match): copy it again, whole\n');
});

test('the join token is also read from --token-file or $MESH_JOIN_TOKEN', (t) => {
  const damaged =
    'mesh: join token is damaged (its checksum does not match): copy it again, whole\n';
  const good = encodeJoinToken({
    clusterId: 'c1',
    seeds: ['127.0.0.1:7946'],
    caPin: '0'.repeat(64),
    secret: 'A'.repeat(43),
  }).slice(0, -3);
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cli-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), `${good}\n`);
  t.is(mesh('join', '--token-file', join(dir, 'token')).stderr, damaged, 'read from the file');
  const fromEnv = spawnSync(process.execPath, [main, 'join'], {
    encoding: 'utf8',
    env: { ...process.env, MESH_JOIN_TOKEN: good },
  });
  t.is(fromEnv.stderr, damaged, 'read from the environment');
  t.regex(mesh('join', '--token-file', join(dir, 'none')).stderr, /^mesh: --token-file: ENOENT/);
});

test('a join token given as an argument is blanked out of the command line at once', async (t) => {
  // A seed that takes the connection and never answers: the join waits, and the test looks.
  const silent = createServer(() => {});
  // This test's loopback address: 127.0.61.1.
  await new Promise<void>((resolve) => silent.listen(0, '127.0.61.1', resolve));
  t.teardown(() => silent.close());
  const token = encodeJoinToken({
    clusterId: 'c1',
    seeds: [`127.0.61.1:${(silent.address() as { port: number }).port}`],
    caPin: '0'.repeat(64),
    secret: 'B'.repeat(43),
  });
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cli-title-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [main, 'join', token, '--data-dir', dir], {
    stdio: 'ignore',
  });
  t.teardown(() => child.kill('SIGKILL'));
  const shown = (await eventually(
    () => {
      const line = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      return line.startsWith('mesh join') ? line : undefined;
    },
    { what: 'the title set', timeoutMs: 5000, intervalMs: 10 },
  )) as string;
  t.false(shown.includes(token), 'the token is not in the command line');
  t.regex(shown, /^mesh join \(token\) --data-dir /);
});

test('a typo gets a suggestion', (t) => {
  const { code, stderr } = mesh('dploy');
  t.is(code, 2);
  t.regex(stderr, /unknown command "dploy" \(did you mean "deploy"\?\)/);
  const option = mesh('deploy', '--detatch');
  t.is(option.code, 2);
  t.is(
    option.stderr,
    'mesh: deploy: unknown option --detatch (did you mean --detach?); see "mesh deploy --help"\n',
  );
  t.is(
    mesh('deploy', '-c').stderr,
    'mesh: deploy: --compose-file takes a value: the compose or stack file to deploy (repeatable: merged in order, as Compose does)\n',
  );
});

test('a stack file is checked before any agent is asked, and a bad flag is named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'stack.yml');
  writeFileSync(file, 'services:\n  web:\n    image: a\n    ports: ["http"]\n');
  const bad = mesh('deploy', '-c', file, 'app', '--data-dir', join(dir, 'no-agent'));
  t.is(bad.code, 1);
  t.is(bad.stderr, `mesh: ${file}:4:13: services.web.ports.0: "http" is not a port (1-65535)\n`);
  const flag = mesh('deploy', '-c', file, '--timeout', 'soon', '--data-dir', join(dir, 'no-agent'));
  t.is(flag.code, 2);
  t.regex(flag.stderr, /^mesh: --timeout: "soon" is not a duration/);
  // Several files are merged: a problem is said in the file that sets the key.
  const override = join(dir, 'override.yml');
  writeFileSync(override, 'services:\n  web:\n    image: b\n    ports: ["8081:80"]\n');
  writeFileSync(file, 'services:\n  web:\n    image: a\n    stop_grace_period: soon\n');
  const two = mesh(
    'deploy',
    '-c',
    file,
    '-c',
    override,
    'app',
    '--data-dir',
    join(dir, 'no-agent'),
  );
  t.is(two.code, 1);
  t.regex(two.stderr, new RegExp(`^mesh: ${file}:4:\\d+: services\\.web\\.stop_grace_period: `));
});

test('deploy lists the keys it ignores once, grouped by why, with the count', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'stack.yml');
  writeFileSync(
    file,
    'services:\n  web:\n    image: a\n    build: .\n    privileged: true\n  api:\n    image: b\n    build: ./api\n',
  );
  const { code, stderr } = mesh('deploy', '-c', file, 'app', '--data-dir', join(dir, 'no-agent'));
  t.is(code, 4, 'no agent to deploy to');
  const [head, ...rest] = stderr.trimEnd().split('\n');
  t.is(head, `mesh: ignoring 3 keys of ${file}:`);
  t.regex(
    rest.join('\n'),
    /^ {2}services\.web\.build \(line 4\), services\.api\.build \(line 8\): .+$/m,
  );
  t.regex(rest.join('\n'), /^ {2}services\.web\.privileged \(line 5\): .+$/m);
  t.regex(rest.at(-1) ?? '', /^mesh: no mesh agent is running/);
});

test('a dry run without an agent checks the file only, says so, and shows what it would deploy', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'stack.yml');
  writeFileSync(
    file,
    'services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\n    privileged: true\n    deploy: { replicas: 2, placement: { constraints: [node.role == worker] } }\n',
  );
  const dry = mesh(
    'deploy',
    '-c',
    file,
    'app',
    '--dry-run',
    '--json',
    '--data-dir',
    join(dir, 'none'),
  );
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stderr, /no mesh agent is running .*: checked the file only/);
  t.like(JSON.parse(dry.stdout), {
    stack: 'app',
    checkedBy: 'file',
    services: [
      {
        id: 'app.web',
        change: null,
        replicas: 2,
        constraints: ['node.role == worker'],
        ports: [{ published: 8080, target: 80, protocol: 'tcp' }],
      },
    ],
    ignored: [{ path: 'services.web.privileged', line: 5 }],
  });
  const text = mesh('deploy', '-c', file, 'app', '--dry-run', '--data-dir', join(dir, 'none'));
  t.regex(text.stdout, /^dry run of stack app: nothing was changed\nSERVICE +CHANGE/);
});

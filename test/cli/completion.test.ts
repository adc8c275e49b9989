import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { mesh } from '../helpers/local-cluster.js';

const run = promisify(execFile);

/** What bash completes for the words, with the script loaded and `mesh` answering as a cluster would. */
async function complete(shell: 'bash' | 'zsh', words: string[]): Promise<string[]> {
  const script = (await mesh('completion', shell)).stdout;
  const cluster = `mesh() { case "$*" in "ls -q") echo shop.web shop.db ;; "node ls -q") echo n1 n2 ;; esac; }`;
  const line = `${cluster}\n${script}\nCOMP_WORDS=(${words.map((w) => `"${w}"`).join(' ')}); COMP_CWORD=${words.length - 1}; _mesh; echo "\${COMPREPLY[*]}"`;
  // zsh's script starts with bashcompinit, which bash has not: only bash runs it here.
  const { stdout } = await run('bash', [
    '-c',
    shell === 'zsh' ? line.replace(/^autoload.*$/m, '') : line,
  ]);
  return stdout.trim().split(' ').filter(Boolean);
}

test('commands, subcommands, services and nodes complete', async (t) => {
  t.deepEqual(await complete('bash', ['mesh', 'dep']), ['deploy']);
  t.deepEqual(await complete('bash', ['mesh', 'node', 'd']), ['drain']);
  t.deepEqual(await complete('bash', ['mesh', 'logs', 'shop.w']), ['shop.web']);
  t.deepEqual(await complete('bash', ['mesh', 'node', 'drain', '']), ['n1', 'n2']);
  t.deepEqual(await complete('bash', ['mesh', 'service', 'update', 'shop.d']), ['shop.db']);
  t.deepEqual(await complete('bash', ['mesh', 'ps', '--j']), ['--json']);
  t.deepEqual(await complete('zsh', ['mesh', 'servi']), ['service']);
});

test('a shell without a script is refused, naming those there are', async (t) => {
  const answer = await mesh('completion', 'fish');
  t.is(answer.code, 2);
  t.regex(answer.stderr, /no script for "fish"; there is bash and zsh/);
  t.regex((await mesh('completion', '--help')).stdout, /^Usage: mesh completion bash\|zsh/m);
});

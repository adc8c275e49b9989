/**
 * The majority arithmetic, from the cases in testdata/quorum.txt (a case a line, as etcd-raft's
 * testdata): each line says what is asked of which voters and what the answer must be.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { committedIndex, hasMajority, voteResult } from '../../../mesh/raft/quorum.js';

const CASES = fileURLToPath(
  new URL('../../../../test/mesh/raft/testdata/quorum.txt', import.meta.url),
);

/** `VOTER=VALUE` pairs as a map. */
function pairs(words: string[]): Map<string, string> {
  return new Map(words.map((w) => w.split('=') as [string, string]));
}

function answer(line: string): string {
  const [question = '', expected] = line.split('->').map((part) => part.trim());
  const [head = '', rest = ''] = question.split(':');
  const [op, ...voters] = head.trim().split(/\s+/);
  const words = rest.trim().split(/\s+/).filter(Boolean);
  if (expected === undefined) throw new Error(`no "-> answer" in: ${line}`);
  if (op === 'committed') {
    const acked = pairs(words);
    return String(committedIndex(voters, (v) => Number(acked.get(v) ?? 0)));
  }
  if (op === 'vote') {
    const votes = new Map([...pairs(words)].map(([v, yes]) => [v, yes === 'y']));
    return voteResult(voters, votes);
  }
  if (op === 'majority') return String(hasMajority(voters, (v) => words.includes(v)));
  throw new Error(`unknown question "${op}" in: ${line}`);
}

test('every case of testdata/quorum.txt gets its answer', (t) => {
  const lines = readFileSync(CASES, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  t.true(lines.length >= 20);
  for (const line of lines) t.is(answer(line), line.split('->')[1]?.trim() ?? '', line);
});

import test from 'ava';
import {
  decodeJoinToken,
  encodeJoinToken,
  JoinTokenError,
  newJoinSecret,
} from '../../../mesh/pki/token.js';

const token = {
  clusterId: 'c0123456789abcdef',
  seeds: ['10.0.0.1:7946', '[fd00::2]:7946', 'node-3.lan:7946'],
  caPin: 'ab'.repeat(32),
  secret: newJoinSecret(),
};

test('a token round-trips and reads as MESH-1-', (t) => {
  const text = encodeJoinToken(token);
  t.true(text.startsWith('MESH-1-'));
  t.deepEqual(decodeJoinToken(`  ${text}\n`), token);
});

const mangled: Array<[string, (text: string) => string, RegExp]> = [
  ['empty', () => '', /not a mesh join token: it should start with "MESH-1-"/],
  ['something else', () => 'SWMTKN-1-abc', /not a mesh join token/],
  ['a future version', (x) => x.replace('MESH-1-', 'MESH-2-'), /version 2 is not understood/],
  ['truncated', (x) => x.slice(0, x.length - 12), /damaged \(its checksum does not match\)/],
  [
    'one character changed',
    (x) => x.replace(/.(?=.{20}$)/, (c) => (c === 'A' ? 'B' : 'A')),
    /damaged/,
  ],
  ['missing its checksum', (x) => x.slice(0, x.lastIndexOf('.')), /damaged/],
];

for (const [name, mangle, message] of mangled) {
  test(`a token ${name} gets a clear message`, (t) => {
    const error = t.throws(() => decodeJoinToken(mangle(encodeJoinToken(token))), {
      instanceOf: JoinTokenError,
    });
    t.regex(error?.message ?? '', message);
  });
}

test('a token whose payload is well-formed but incomplete names what is missing', (t) => {
  const noSeeds = encodeJoinToken({ ...token, seeds: [] });
  t.throws(() => decodeJoinToken(noSeeds), { message: /seeds must be a non-empty list/ });
  const badPin = encodeJoinToken({ ...token, caPin: 'xyz' });
  t.throws(() => decodeJoinToken(badPin), { message: /CA pin must be 64 hex digits/ });
  const badSeed = encodeJoinToken({ ...token, seeds: ['no-port'] });
  t.throws(() => decodeJoinToken(badSeed), { message: /host:port/ });
});

import test from 'ava';
import { keyId, newKey, open, SealError, seal } from '../../../mesh/secrets/sealing.js';

test('a sealed value opens with its key, and only with its key', (t) => {
  const key = newKey();
  const sealed = seal(key, Buffer.from('hunter2'));
  t.false(Buffer.from(sealed.data, 'base64').includes('hunter2'));
  t.is(open(key, sealed).toString(), 'hunter2');
  t.throws(() => open(newKey(), sealed), { instanceOf: SealError });
  t.not(seal(key, Buffer.from('hunter2')).data, sealed.data, 'a fresh IV each time');
});

test('a sealed value changed by one bit does not open', (t) => {
  const key = newKey();
  const sealed = seal(key, Buffer.from('the database password'));
  const data = Buffer.from(sealed.data, 'base64');
  data[0] = (data[0] ?? 0) ^ 1;
  t.throws(() => open(key, { ...sealed, data: data.toString('base64') }), {
    instanceOf: SealError,
    message: /changed, or sealed with another key/,
  });
});

test("a key's ID names it without telling it", (t) => {
  const key = newKey();
  t.is(keyId(key), keyId(Buffer.from(key)));
  t.not(keyId(key), keyId(newKey()));
  t.false(key.toString('hex').includes(keyId(key)));
});

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { KEY_TABLE_END, KEY_TABLE_START, keyTable } from '../../../cli/stackfile/key-table.js';

const README = fileURLToPath(new URL('../../../../README.md', import.meta.url));

test("the README's table of Compose keys is what mesh deploy acts on (MESH_UPDATE_DOCS=1 rewrites it)", (t) => {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf(KEY_TABLE_START);
  const end = text.indexOf(KEY_TABLE_END) + KEY_TABLE_END.length;
  t.true(start >= 0 && end > start, 'the README has the markers');
  const table = keyTable();
  if (process.env.MESH_UPDATE_DOCS === '1')
    writeFileSync(README, text.slice(0, start) + table + text.slice(end));
  else t.is(text.slice(start, end), table);
});

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { invocation, joinInstructions } from '../../cli/invocation.js';

/** This program, as `mesh` runs it. */
const MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

test('the mesh first on the PATH is run as mesh when it is this program, else through the package', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mesh-invocation-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const [installed, unrelated, empty] = ['installed', 'unrelated', 'empty'].map((name) => {
    const dir = join(root, name);
    mkdirSync(dir);
    return dir;
  }) as [string, string, string];
  symlinkSync(MAIN, join(installed, 'mesh')); // as npm i -g links it
  writeFileSync(join(unrelated, 'mesh'), '#!/bin/sh\n'); // the other package named mesh

  t.is(invocation(MAIN, [empty, installed].join(':')), 'mesh');
  t.is(invocation(MAIN, [unrelated, installed].join(':')), 'npx @mesh-orchestrator/mesh');
  t.is(invocation(MAIN, empty), 'npx @mesh-orchestrator/mesh');
  t.is(invocation(MAIN, undefined), 'npx @mesh-orchestrator/mesh');
});

test('the join instructions never say npx mesh, and say how the other machines get mesh', (t) => {
  for (const run of ['mesh', 'npx @mesh-orchestrator/mesh']) {
    const text = joinInstructions('MESH-1-abc', run);
    t.true(text.includes(`  ${run} join MESH-1-abc\n`));
    t.notRegex(text, /npx mesh\b/);
    t.regex(text, /npm i -g @mesh-orchestrator\/mesh/);
  }
});

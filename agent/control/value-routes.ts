import type { ValueKind } from '../../mesh/api/secrets.js';
import { InvalidError } from '../errors.js';
import type { StoredValues } from '../secrets/values.js';
import type { ControlHandlers } from './api.js';

function kindOf(kind: unknown): ValueKind {
  if (kind === 'secrets' || kind === 'configs') return kind;
  throw new InvalidError(`kind must be secrets or configs, not "${String(kind)}"`);
}

/** `mesh secret ...` and `mesh config ...`: the values' routes of the control API. */
export function valueRoutes(
  values: StoredValues,
): Pick<
  ControlHandlers,
  | 'POST /v1/values'
  | 'POST /v1/values/update'
  | 'POST /v1/values/rm'
  | 'GET /v1/values'
  | 'GET /v1/value'
> {
  return {
    'POST /v1/values': ({ kind, name, data }) => values.create(kindOf(kind), name, data),
    'POST /v1/values/update': ({ kind, name, data }) => values.update(kindOf(kind), name, data),
    'POST /v1/values/rm': ({ kind, name }) => values.remove(kindOf(kind), name),
    'GET /v1/values': ({ kind }) => values.list(kindOf(kind)),
    'GET /v1/value': ({ kind, name }) => values.inspect(kindOf(kind), name),
  };
}

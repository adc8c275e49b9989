import type { Operators } from '../cluster/operators.js';
import type { ControlHandlers } from './api.js';

/** `mesh operator ...`: the operators' routes of the control API. */
export function operatorRoutes(
  operators: Operators,
): Pick<ControlHandlers, 'POST /v1/operators' | 'GET /v1/operators' | 'POST /v1/operators/revoke'> {
  return {
    'POST /v1/operators': (request) => operators.add(request),
    'GET /v1/operators': () => operators.list(),
    'POST /v1/operators/revoke': (request) => operators.revoke(request),
  };
}

/** Stacks: the services `mesh deploy` declared together under one name. */
import { type Check, listOf, object, string } from './schema.js';

/** stacks/<name> */
export interface StackRecord {
  name: string;
  /** The names of its services (their IDs are `${stack}.${name}`). */
  services: string[];
  deployedAt: string;
}

/** What a stack or service name may be: it becomes part of IDs, container names and DNS names. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export const name: Check = (value, path) =>
  isValidName(value) ? undefined : `${path} must be lowercase letters, digits, - and _`;

/** stacks/<name> */
export const checkStack: Check = object({
  required: { name, services: listOf(name), deployedAt: string },
});

/**
 * Why the agent refuses a request, by kind, without knowing who asked: the control API maps each
 * kind to its HTTP status (control.ts), and anything else to a 500.
 */

/** The request itself is wrong: a bad name, value or shape. */
export class InvalidError extends Error {
  override name = 'InvalidError';
}

/** This node may not do it: a worker asked to change desired state. */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

/** It names something the cluster does not have. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** It cannot be done in the state the cluster is in (a port taken, a node still alive). */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** A write reached the leader but was not confirmed: it may or may not have been applied. */
export class UnknownOutcomeError extends Error {
  override name = 'UnknownOutcomeError';
}

/** It cannot be answered now: no leader, or this node's replica is not confirmed current. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
}

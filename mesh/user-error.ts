/**
 * Failures a user can act on: said in one line, without a stack trace, and told apart by the exit
 * code, so that a script can (`mesh --help` lists them). Anything else is a bug in mesh (70).
 */
export const EXIT = {
  /** The cluster, or the agent checking a file or a token, said no: nothing changed. */
  refused: 1,
  /** The command line is wrong: an unknown command or option, a missing argument. */
  usage: 2,
  /** The change reached the leader but was not confirmed: it may or may not have been made. */
  unknownOutcome: 3,
  /** The agent could not be reached, could not answer now, or failed. */
  agent: 4,
  /** mesh itself failed (EX_SOFTWARE): a bug, with its stack trace. */
  bug: 70,
} as const;

export class UserError extends Error {
  readonly exitCode: number = EXIT.refused;
}

import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The package's npm name: `npx mesh` would run an unrelated package that owns the name "mesh". */
const PACKAGE = '@mesh-orchestrator/mesh';

/**
 * How a person runs this mesh from a shell: `mesh` when the `mesh` found first on the PATH is this
 * very program, else the package through npx, never a bare `npx mesh`.
 */
export function invocation(self: string, path: string | undefined): string {
  const me = existsSync(self) ? realpathSync(self) : undefined;
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'mesh');
    // existsSync follows links: a dangling one is passed over, as the shell passes over it.
    if (existsSync(candidate)) return realpathSync(candidate) === me ? 'mesh' : `npx ${PACKAGE}`;
  }
  return `npx ${PACKAGE}`;
}

/** What `mesh init` prints for the other machines: how to get mesh there, then the join. */
export function joinInstructions(token: string, run: string): string {
  return [
    'Join other machines with:',
    `  ${run} join ${token}`,
    `(on each machine, mesh first: npm i -g ${PACKAGE}, or the tarball "npm pack" makes in a checkout; "mesh token" prints the token again)`,
    '',
  ].join('\n');
}

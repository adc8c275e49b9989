/**
 * The project's import rules, checked by `npm run lint` (and so by `npm test`): no import circles,
 * and the layers only import downwards — mesh/ (the cluster) ← proxy/ (the data plane) ← agent/
 * (the node daemon) ← cli/ (the command). examples/ and test/ may use every layer.
 * Type-only imports count: a circle of types is still a circle a reader has to untangle.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Files that import each other, directly or round a loop.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'mesh-is-the-bottom',
      comment: 'mesh/ knows nothing of the data plane, the agent, the CLI or the tests.',
      severity: 'error',
      from: { path: '^mesh/' },
      to: { path: '^(proxy|agent|cli|examples|test)/' },
    },
    {
      name: 'mesh-knows-no-docker-dns-http',
      comment: 'The cluster layer must not know about Docker, DNS or HTTP routing (DESIGN.md).',
      severity: 'error',
      from: { path: '^mesh/' },
      to: { dependencyTypes: ['npm'], path: 'node_modules/(dockerode|dns2|undici)/' },
    },
    {
      name: 'proxy-below-agent',
      comment: 'proxy/ is fed by the agent; it imports only mesh/.',
      severity: 'error',
      from: { path: '^proxy/' },
      to: { path: '^(agent|cli|examples|test)/' },
    },
    {
      name: 'agent-below-cli',
      comment: 'agent/ never imports the command line, the examples or the tests.',
      severity: 'error',
      from: { path: '^agent/' },
      to: { path: '^(cli|examples|test)/' },
    },
    {
      name: 'control-api-contract-only',
      comment:
        "Inside agent/, the control API's server and routes are wired by agent.ts alone; the " +
        'other rooms use only its contract (control/api.ts), which imports nothing of the agent.',
      severity: 'error',
      from: { path: '^agent/', pathNot: '^agent/(agent\\.ts|control/)' },
      to: { path: '^agent/control/', pathNot: '^agent/control/api\\.ts$' },
    },
    {
      name: 'contract-stands-alone',
      severity: 'error',
      from: { path: '^agent/control/api\\.ts$' },
      to: { path: '^agent/' },
    },
    {
      name: 'cli-through-agent-entry-points',
      comment:
        'cli/ runs the agent (agent.ts, a restore it opened) and talks to it through the control ' +
        "API's contract and the data dir's layout, never through the agent's internals.",
      severity: 'error',
      from: { path: '^cli/' },
      to: {
        path: '^agent/',
        pathNot: '^agent/(agent|datadir|control/api|identity/restore)\\.ts$',
      },
    },
    {
      name: 'cli-not-examples-or-tests',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^(examples|test)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

/** Labels on everything mesh creates on the engine, so it can find (and clean up) exactly its own. */
export const LABEL = {
  cluster: 'mesh.cluster',
  node: 'mesh.node',
  stack: 'mesh.stack',
  service: 'mesh.service',
  task: 'mesh.task',
  /** On networks: the stack network (or external network) a bridge is this node's copy of. */
  network: 'mesh.network',
} as const;

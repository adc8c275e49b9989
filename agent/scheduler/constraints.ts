import type { NodeInfo } from './model.js';

export class ConstraintError extends Error {
  override name = 'ConstraintError';
}

interface Constraint {
  field: string;
  equal: boolean;
  value: string;
}

const FIELD =
  /^\s*(node\.(?:id|hostname|role|platform\.(?:os|arch)|labels\.[\w.-]+))\s*(==|!=)\s*(\S.*?)\s*$/;

/**
 * Parses Swarm's placement syntax: `node.labels.zone==b`, `node.hostname!=db1`, `node.id==n12`,
 * `node.role==manager`, `node.platform.os==linux`, `node.platform.arch==x86_64`.
 */
export function parseConstraint(text: string): Constraint {
  const match = FIELD.exec(text);
  if (!match) {
    throw new ConstraintError(
      `constraint "${text}" is not of the form node.id|hostname|role|platform.os|platform.arch|labels.KEY ==|!= VALUE`,
    );
  }
  return { field: match[1] as string, equal: match[2] === '==', value: match[3] as string };
}

/** A node's value of a constraint field (`node.labels.zone`, `node.role`, ...). */
export function fieldOf(node: NodeInfo, field: string): string | undefined {
  if (field === 'node.id') return node.id;
  if (field === 'node.hostname') return node.hostname;
  if (field === 'node.role') return node.role;
  if (field === 'node.platform.os') return node.platform?.os;
  if (field === 'node.platform.arch') return node.platform?.arch;
  return node.labels[field.slice('node.labels.'.length)];
}

export function satisfies(node: NodeInfo, constraints: string[]): boolean {
  return constraints.every((text) => {
    const c = parseConstraint(text);
    return (fieldOf(node, c.field) === c.value) === c.equal;
  });
}

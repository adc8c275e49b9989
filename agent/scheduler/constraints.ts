import type { NodeInfo } from './model.js';

export class ConstraintError extends Error {
  override name = 'ConstraintError';
}

interface Constraint {
  field: string;
  equal: boolean;
  value: string;
}

/** Parses `node.labels.zone==b`, `node.hostname!=db1`, `node.id==n12`: Swarm's placement syntax. */
export function parseConstraint(text: string): Constraint {
  const match = /^\s*(node\.(?:id|hostname|labels\.[\w.-]+))\s*(==|!=)\s*(\S.*?)\s*$/.exec(text);
  if (!match) {
    throw new ConstraintError(
      `constraint "${text}" is not of the form node.id|node.hostname|node.labels.KEY ==|!= VALUE`,
    );
  }
  return { field: match[1] as string, equal: match[2] === '==', value: match[3] as string };
}

function fieldOf(node: NodeInfo, field: string): string | undefined {
  if (field === 'node.id') return node.id;
  if (field === 'node.hostname') return node.hostname;
  return node.labels[field.slice('node.labels.'.length)];
}

export function satisfies(node: NodeInfo, constraints: string[]): boolean {
  return constraints.every((text) => {
    const c = parseConstraint(text);
    return (fieldOf(node, c.field) === c.value) === c.equal;
  });
}

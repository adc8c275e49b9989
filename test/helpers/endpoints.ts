import type { Endpoint } from '../../proxy/routing-table.js';

/** A task's endpoint on node n1 for the picking tests: port 80 at 10.0.0.1 (never dialled). */
export const endpoint = (taskId: string): Endpoint => ({
  taskId,
  nodeId: 'n1',
  host: '10.0.0.1',
  ports: new Map([[80, 80]]),
  udpPorts: new Map(),
});

import { type DestinationStream, destination, type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  nodeId: string;
  level?: string;
  destination?: DestinationStream;
}

/** Every line a node writes carries its node ID, so logs of many nodes can be merged. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.MESH_LOG_LEVEL ?? 'info';
  return pino({ level, base: { node: options.nodeId } }, options.destination ?? destination(2));
}

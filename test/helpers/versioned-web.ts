/** The stack rollout tests and benchmarks update: a web page that says which version serves it. */
import { TEST_IMAGE } from '../../examples/test-image.js';

export interface VersionedWebOptions {
  /** The readiness probe's path: one that answers 404 makes a version that never becomes ready. */
  readyPath?: string;
  order?: 'start-first' | 'stop-first';
  replicas?: number;
}

/**
 * `web`, three replicas (unless told) of busybox httpd answering `version` at web.roll.test, ready once
 * readyPath answers; replaced one at a time and watched for a second once all are ready.
 */
export function versionedWebStack(version: string, options: VersionedWebOptions = {}): string {
  const { readyPath = '/', order = 'start-first', replicas = 3 } = options;
  return `
services:
  web:
    image: ${TEST_IMAGE}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo ${version} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
    expose: ["8080"]
    stop_grace_period: 2s
    x-mesh:
      routes: [web.roll.test]
      readiness: { http: ${readyPath}, interval: 200ms, timeout: 1s, failure_threshold: 3 }
    deploy:
      replicas: ${replicas}
      update_config: { parallelism: 1, monitor: 1s, order: ${order} }
`;
}

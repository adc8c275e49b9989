/** The CPU-bound service autoscaling tests and benchmarks put load on. */
import { TEST_IMAGE } from '../../examples/test-image.js';

/**
 * `burn`: busybox httpd whose /cgi-bin/burn spends about 20 ms of CPU a request, ready at /; a
 * tenth of a CPU reserved per replica, autoscaled from 1 to `max` to keep each at half of it,
 * quick to step (2 s periods), down after a window of `windowS` seconds.
 */
export function burnStack(options: { route: string; max: number; windowS: number }): string {
  return `
services:
  burn:
    image: ${TEST_IMAGE}
    command:
      - sh
      - -c
      - |
        mkdir -p /tmp/www/cgi-bin
        echo ok > /tmp/www/index.html
        printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n"\\ni=0\\nwhile [ $$i -lt 5000 ]; do i=$$((i+1)); done\\necho burnt\\n' > /tmp/www/cgi-bin/burn
        chmod 755 /tmp/www/cgi-bin/burn
        exec httpd -f -p 8080 -h /tmp/www
    expose: ["8080"]
    stop_grace_period: 2s
    deploy:
      resources: { reservations: { cpus: "0.1" } }
    x-mesh:
      routes: [${options.route}]
      readiness: { http: /, interval: 200ms }
      autoscale:
        max: ${options.max}
        cpu: 50
        scale_up: { period: 2s }
        scale_down: { stabilization: ${options.windowS}s, period: 2s }
`;
}

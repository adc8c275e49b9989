import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * nginx with `workers` worker processes (one unless told) proxying `listen` to the backends
 * (host:port) over upstream keep-alive, its files under `root`, with `extra` directives in its
 * http block: the peer the HTTP benchmarks compare with.
 */
export function nginxConfig(
  root: string,
  listen: string,
  backends: string | string[],
  extra = '',
  workers = 1,
): string {
  const servers = [backends]
    .flat()
    .map((b) => `server ${b};`)
    .join(' ');
  mkdirSync(join(root, 'nginx'), { recursive: true });
  return `worker_processes ${workers};
daemon off;
pid ${root}/nginx/nginx.pid;
error_log ${root}/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${root}/nginx;
  proxy_temp_path ${root}/nginx;
  ${extra}
  upstream backend { ${servers} keepalive 64; }
  server {
    listen ${listen};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`;
}

/** The engine's create options for a task, built without an engine (agent/runtime/docker-config.ts). */
import test from 'ava';
import { containerConfig } from '../../../agent/runtime/docker-config.js';
import type { TaskSpec } from '../../../agent/runtime/runtime.js';

const PLACE = { hostIp: '127.0.0.9', clusterId: 'c1', nodeId: 'n1' };

function spec(overrides: Partial<TaskSpec> = {}): TaskSpec {
  return {
    taskId: 'shop.web.1.ab12',
    stack: 'shop',
    service: 'web',
    image: 'web:2',
    env: { A: '1' },
    ports: [],
    labels: { team: 'x' },
    resources: {},
    stopGracePeriodMs: 1500,
    ...overrides,
  };
}

test('a container is named and labelled for its task, node and cluster; mesh restarts it, not the engine', (t) => {
  const config = containerConfig(spec(), PLACE, undefined);
  t.is(config.name, 'mesh-shop-web-shop.web.1.ab12');
  t.deepEqual(config.Env, ['A=1']);
  t.like(config.Labels, {
    team: 'x',
    'mesh.cluster': 'c1',
    'mesh.node': 'n1',
    'mesh.stack': 'shop',
    'mesh.service': 'web',
    'mesh.task': 'shop.web.1.ab12',
  });
  t.is(config.StopTimeout, 2, 'the grace period in whole seconds, rounded up');
  t.deepEqual(config.HostConfig?.RestartPolicy, { Name: 'no' });
});

test('only mode-host ports are published, on the node address unless the file narrows them', (t) => {
  const config = containerConfig(
    spec({
      ports: [
        { target: 80, protocol: 'tcp' },
        { target: 53, protocol: 'udp', hostPort: 5353 },
        { target: 443, protocol: 'tcp', hostPort: 8443, hostIp: '127.0.0.1' },
      ],
    }),
    PLACE,
    undefined,
  );
  t.deepEqual(Object.keys(config.ExposedPorts ?? {}), ['80/tcp', '53/udp', '443/tcp']);
  t.deepEqual(config.HostConfig?.PortBindings, {
    '53/udp': [{ HostIp: '127.0.0.9', HostPort: '5353' }],
    '443/tcp': [{ HostIp: '127.0.0.1', HostPort: '8443' }],
  });
});

test("on a stack network the container asks the cluster's DNS, searching its stack first", (t) => {
  const network = {
    keys: ['default'],
    bridgeRange: '10.251.0.0/16',
    dnsServer: '10.250.255.254',
    search: 'shop.mesh',
  };
  const on = containerConfig(spec({ network }), PLACE, 'mesh-c1-shop_default');
  t.like(on.HostConfig, {
    NetworkMode: 'mesh-c1-shop_default',
    Dns: ['10.250.255.254'],
    DnsSearch: ['shop.mesh'],
    DnsOptions: ['ndots:1'],
  });
  const off = containerConfig(spec(), PLACE, undefined);
  t.is(off.HostConfig?.Dns, undefined);
  t.is(off.HostConfig?.NetworkMode, undefined);
});

test('volumes, secret files (read-only), limits, healthcheck and compose settings reach the engine', (t) => {
  const config = containerConfig(
    spec({
      volumes: ['shop_data:/data'],
      files: [{ source: '/run/mesh/n1/t/secrets/pw', target: '/run/secrets/pw' }],
      resources: { cpus: 0.5, memoryBytes: 64 * 2 ** 20 },
      healthcheck: {
        test: ['CMD', 'true'],
        intervalMs: 2000,
        timeoutMs: 1000,
        retries: 3,
        startPeriodMs: 0,
      },
      container: {
        user: '1000',
        tmpfs: ['/tmp:size=64m', '/run'],
        ulimits: { nofile: { soft: 1024, hard: 2048 } },
        logging: { options: { 'max-size': '1m' } },
      },
    }),
    PLACE,
    undefined,
  );
  t.deepEqual(config.HostConfig?.Binds, [
    'shop_data:/data',
    '/run/mesh/n1/t/secrets/pw:/run/secrets/pw:ro',
  ]);
  t.is(config.HostConfig?.NanoCpus, 500_000_000);
  t.is(config.HostConfig?.Memory, 64 * 2 ** 20);
  t.deepEqual(config.Healthcheck, {
    Test: ['CMD', 'true'],
    Interval: 2e9,
    Timeout: 1e9,
    Retries: 3,
    StartPeriod: 0,
  });
  t.is(config.User, '1000');
  t.deepEqual(config.HostConfig?.Tmpfs, { '/tmp': 'size=64m', '/run': '' });
  t.deepEqual(config.HostConfig?.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
  t.deepEqual(config.HostConfig?.LogConfig, { Type: '', Config: { 'max-size': '1m' } });
});

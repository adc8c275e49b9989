import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { readStackFile, StackFileError } from '../../../cli/stackfile/stack-file.js';
import { parseBytes, parseDuration, splitCommand } from '../../../cli/stackfile/values.js';

const dir = mkdtempSync(join(tmpdir(), 'mesh-stackfile-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(name: string, text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    readStackFile(file(name, text), 'app', env);
  } catch (e) {
    if (e instanceof StackFileError) return e.message;
    throw e;
  }
  throw new Error(`${name} was accepted`);
}

test('a compose file becomes service definitions with compose defaults filled in', (t) => {
  file('web.env', '# comment\nFROM_FILE=1\nexport QUOTED="two words"\n');
  const stack = readStackFile(
    file(
      'ok.yml',
      `name: shop
services:
  web:
    image: nginx:\${TAG:-1.27}
    command: nginx -g "daemon off;"
    env_file: web.env
    environment: [A=1, FROM_ENV]
    ports: ["8080:80", "9000-9001:90-91/udp", { target: 443 }]
    volumes: ["data:/var/lib", "./site:/www:ro"]
    restart: on-failure:3
    stop_grace_period: 1m30s
    deploy:
      replicas: 2
      resources: { limits: { cpus: "0.5", memory: 128m }, reservations: { memory: 1g } }
      placement: { constraints: ["node.labels.zone==a"], max_replicas_per_node: 1 }
  db:
    image: postgres
    deploy: { mode: global }
`,
    ),
    undefined,
    { FROM_ENV: 'x' },
  );
  t.is(stack.stack, 'shop');
  const [web, db] = stack.services;
  t.deepEqual(web?.command, ['nginx', '-g', 'daemon off;']);
  t.is(web?.image, 'nginx:1.27');
  t.deepEqual(web?.env, { FROM_FILE: '1', QUOTED: 'two words', A: '1', FROM_ENV: 'x' });
  t.deepEqual(web?.ports, [
    { target: 80, protocol: 'tcp', published: 8080 },
    { target: 90, protocol: 'udp', published: 9000 },
    { target: 91, protocol: 'udp', published: 9001 },
    { target: 443, protocol: 'tcp' },
  ]);
  t.deepEqual(web?.volumes, ['shop_data:/var/lib', `${dir}/site:/www:ro`], 'named per stack');
  t.deepEqual(web?.namedVolumes, [{ name: 'shop_data', pinned: true }]);
  t.deepEqual(web?.restartPolicy, {
    condition: 'on-failure',
    delayMs: 5000,
    maxAttempts: 3,
    windowMs: 0,
  });
  t.is(web?.stopGracePeriodMs, 90_000);
  t.deepEqual(web?.resources, {
    limits: { cpus: 0.5, memoryBytes: 128 * 2 ** 20 },
    reservations: { cpus: 0, memoryBytes: 2 ** 30 },
  });
  t.deepEqual(web?.placement, { constraints: ['node.labels.zone==a'], maxReplicasPerNode: 1 });
  t.is(db?.mode, 'global');
});

test('unsupported keys are listed as ignored with a reason and their line, never dropped silently', (t) => {
  const stack = readStackFile(
    file(
      'ignored.yml',
      'version: "3.8"\nservices:\n  web:\n    image: a\n    build: .\n    privileged: true\n    develop: {}\nnetworks:\n  front:\n    driver: overlay\n',
    ),
    'app',
  );
  t.deepEqual(
    stack.ignored.map((i) => `${i.path}@${i.line}`),
    [
      'version@1',
      'networks.front.driver@10',
      'services.web.build@5',
      'services.web.privileged@6',
      'services.web.develop@7',
    ],
  );
  t.true(stack.ignored.every((i) => i.reason.length > 0));
});

test('errors name file, line, column and key path', (t) => {
  t.regex(problems('yaml.yml', 'services:\n  web: [\n'), /yaml\.yml:\d+:\d+: .*invalid YAML/);
  t.regex(
    problems('unknown.yml', 'services:\n  web:\n    image: a\n    imagee: b\n'),
    /unknown\.yml:4:5: services\.web\.imagee: unknown key "imagee"/,
  );
  t.regex(
    problems('type.yml', 'services:\n  web:\n    image: a\n    deploy:\n      replicas: many\n'),
    /type\.yml:5:17: services\.web\.deploy\.replicas: must be a whole number/,
  );
  t.regex(
    problems('duration.yml', 'services:\n  web:\n    image: a\n    stop_grace_period: soon\n'),
    /duration\.yml:4:24: services\.web\.stop_grace_period: "soon" is not a duration \(like 10s, 1m30s, 500ms\)/,
  );
  t.regex(
    problems(
      'health.yml',
      'services:\n  web:\n    image: a\n    healthcheck:\n      test: [CMD, "true"]\n      interval: fast\n',
    ),
    /health\.yml:6:17: services\.web\.healthcheck\.interval: "fast" is not a duration/,
  );
  t.regex(
    problems(
      'clash.yml',
      'services:\n  a:\n    image: a\n    ports: ["80:80"]\n  b:\n    image: a\n    ports: ["80:81"]\n',
    ),
    /clash\.yml:7:13: services\.b\.ports\.0: port 80\/tcp is already published by service a/,
  );
  t.regex(
    problems('deps.yml', 'services:\n  web:\n    image: a\n    depends_on: [db]\n'),
    /deps\.yml:4:17: services\.web\.depends_on: depends on "db", which this file does not declare/,
  );
  t.regex(
    problems('var.yml', 'services:\n  web:\n    image: "$' + '{IMAGE:?set IMAGE}"\n'),
    /var\.yml:3:12: services\.web\.image: variable IMAGE is required: set IMAGE/,
  );
  t.regex(
    problems('noimage.yml', 'services:\n  web:\n    command: run\n'),
    /noimage\.yml:3:5: services\.web: missing "image"/,
  );
});

test('compose value syntaxes: durations, sizes, commands', (t) => {
  t.is(parseDuration('1h2m3s'), 3_723_000);
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration(2), 2000);
  t.throws(() => parseDuration('2 minutes'));
  t.is(parseBytes('512m'), 512 * 2 ** 20);
  t.is(parseBytes('1.5GB'), 1.5 * 2 ** 30);
  t.throws(() => parseBytes('lots'));
  t.deepEqual(splitCommand(`sh -c 'echo "hi there"' a\\ b`), [
    'sh',
    '-c',
    'echo "hi there"',
    'a b',
  ]);
  t.throws(() => splitCommand('echo "open'));
});

test('networks become keys: the stack default, a stack network, an external one by its name', (t) => {
  const stack = readStackFile(
    file(
      'networks.yml',
      [
        'services:',
        '  web: { image: a, networks: [front, shared] }',
        '  db: { image: a }',
        '  dns: { image: a, ports: ["53:53/udp"], networks: { front: { aliases: [ns] } } }',
        'networks:',
        '  front: {}',
        '  shared: { external: true, name: common }',
      ].join('\n'),
    ),
    'shop',
  );
  const byName = new Map(stack.services.map((s) => [s.name, s]));
  t.deepEqual(byName.get('web')?.networks, ['shop_front', 'common']);
  t.is(byName.get('db')?.networks, undefined, 'the default network');
  t.deepEqual(
    stack.ignored.map((i) => `${i.path}: ${i.reason}`),
    [
      'services.dns.networks.front.aliases: other services reach it by its service name (through its service address)',
    ],
  );
  const error = t.throws(() =>
    readStackFile(
      file('undeclared.yml', 'services:\n  web: { image: a, networks: [back] }\n'),
      'shop',
    ),
  );
  t.regex(
    error?.message ?? '',
    /undeclared\.yml:2:\d+: services\.web\.networks\.back: network "back" is not declared/,
  );
});

test('the example stacks read cleanly, nothing ignored', (t) => {
  const examples = fileURLToPath(new URL('../../../../examples/stacks/', import.meta.url));
  const files = readdirSync(examples).filter((f) => f.endsWith('.yml'));
  t.true(files.length >= 3);
  for (const name of files) {
    const stack = readStackFile(join(examples, name), 'example', {});
    t.deepEqual(stack.ignored, [], name);
    t.true(stack.services.length >= 2, name);
  }
});

test('x-mesh at_most_once is read as a flag, and anything but true or false is refused', (t) => {
  const stack = readStackFile(
    file(
      'once.yml',
      'services:\n  job:\n    command: ["sleep", "1"]\n    x-mesh: { runtime: process, at_most_once: true }\n  web:\n    image: nginx\n',
    ),
    'app',
    {},
  );
  t.true(stack.services.find((s) => s.name === 'job')?.atMostOnce);
  t.false('atMostOnce' in (stack.services.find((s) => s.name === 'web') ?? {}));
  t.regex(
    problems(
      'once-bad.yml',
      'services:\n  job:\n    image: x\n    x-mesh: { at_most_once: "yes" }\n',
    ),
    /services\.job\.x-mesh\.at_most_once: must be true or false/,
  );
});

test('YAML anchors and merge keys resolve as Compose does: local keys win', (t) => {
  const stack = readStackFile(
    file(
      'merge.yml',
      `x-defaults: &defaults
  image: busybox
  restart: always
  environment: { LEVEL: info }
services:
  web:
    <<: *defaults
    command: httpd
  db:
    <<: [*defaults]
    image: postgres
    deploy:
      placement: { constraints: ["node.role == manager", "node.platform.os == linux"] }
`,
    ),
    'app',
    {},
  );
  const web = stack.services.find((s) => s.name === 'web');
  const db = stack.services.find((s) => s.name === 'db');
  t.like(web, { image: 'busybox', command: ['httpd'], env: { LEVEL: 'info' } });
  t.like(web?.restartPolicy, { condition: 'any' });
  t.is(db?.image, 'postgres');
  t.deepEqual(db?.placement.constraints, ['node.role == manager', 'node.platform.os == linux']);
  t.deepEqual(stack.ignored, []);
});

test('x-mesh readiness and update_config are read with their defaults; mistakes name their key', (t) => {
  const stack = readStackFile(
    file(
      'ready.yml',
      `services:
  api:
    image: api
    expose: ["8080"]
    x-mesh: { readiness: { http: /ready, start_period: 10s } }
    deploy:
      update_config: { order: stop-first, monitor: 2s, max_failure_ratio: 0.5 }
  db:
    image: db
    x-mesh: { readiness: { tcp: 5432, interval: 500ms, failure_threshold: 5 } }
`,
    ),
    'app',
    {},
  );
  const [api, db] = stack.services;
  t.deepEqual(api?.readiness, {
    kind: 'http',
    port: 8080,
    path: '/ready',
    intervalMs: 2000,
    timeoutMs: 1000,
    failureThreshold: 3,
    successThreshold: 1,
    startPeriodMs: 10_000,
  });
  t.like(db?.readiness, { kind: 'tcp', port: 5432, intervalMs: 500, failureThreshold: 5 });
  t.deepEqual(api?.update, {
    parallelism: 1,
    delayMs: 0,
    order: 'stop-first',
    failureAction: 'rollback',
    monitorMs: 2000,
    maxFailureRatio: 0.5,
  });
  t.like(db?.update, { order: 'start-first', failureAction: 'rollback', monitorMs: 5000 });
  t.like(db?.rollback, { order: 'start-first', failureAction: 'pause' });
  t.regex(
    problems(
      'ready-both.yml',
      'services:\n  a:\n    image: x\n    x-mesh: { readiness: { http: /, tcp: 80 } }\n',
    ),
    /ready-both\.yml:4:\d+: services\.a\.x-mesh\.readiness: needs one of http: PATH or tcp: PORT/,
  );
  t.regex(
    problems(
      'ready-port.yml',
      'services:\n  a:\n    image: x\n    x-mesh: { readiness: { http: /ok } }\n',
    ),
    /services\.a\.x-mesh\.readiness: the service has no TCP port/,
  );
  t.regex(
    problems(
      'ready-key.yml',
      'services:\n  a:\n    image: x\n    x-mesh: { readiness: { tcp: 80, treshold: 2 } }\n',
    ),
    /services\.a\.x-mesh\.readiness\.treshold: unknown readiness setting/,
  );
  t.regex(
    problems(
      'order.yml',
      'services:\n  a:\n    image: x\n    deploy: { update_config: { order: random } }\n',
    ),
    /order\.yml:4:\d+: services\.a\.deploy\.update_config\.order: must be one of "start-first", "stop-first"/,
  );
});

test('per-container keys are applied to Docker tasks, and reported as unused for process ones', (t) => {
  const stack = readStackFile(
    file(
      'container.yml',
      `services:
  app:
    image: app
    user: "1000"
    working_dir: /srv
    init: true
    read_only: true
    tmpfs: /run
    ulimits: { nproc: 65535, nofile: { soft: 20000, hard: 40000 } }
    cap_add: [NET_ADMIN]
    sysctls: [net.core.somaxconn=1024]
    shm_size: 64m
    extra_hosts: ["somehost=162.242.195.82", "otherhost:50.31.209.229"]
    stop_signal: SIGQUIT
    logging: { driver: local, options: { max-size: 10m } }
    deploy: { resources: { limits: { pids: 100 } } }
  job:
    command: ["true"]
    user: "1000"
    x-mesh: { runtime: process }
`,
    ),
    'app',
    {},
  );
  t.deepEqual(stack.services[0]?.container, {
    user: '1000',
    workingDir: '/srv',
    init: true,
    readOnly: true,
    tmpfs: ['/run'],
    ulimits: { nproc: { soft: 65535, hard: 65535 }, nofile: { soft: 20000, hard: 40000 } },
    capAdd: ['NET_ADMIN'],
    sysctls: { 'net.core.somaxconn': '1024' },
    shmSizeBytes: 64 * 2 ** 20,
    extraHosts: ['somehost:162.242.195.82', 'otherhost:50.31.209.229'],
    stopSignal: 'SIGQUIT',
    logging: { driver: 'local', options: { 'max-size': '10m' } },
    pidsLimit: 100,
  });
  t.false('container' in (stack.services[1] ?? {}));
  t.deepEqual(
    stack.ignored.filter((i) => i.path.startsWith('services.job')).map((i) => i.reason),
    ['not used by the process runtime'],
  );
  t.regex(
    problems(
      'ulimit.yml',
      'services:\n  a:\n    image: x\n    ulimits: { nofile: { soft: 10, hard: 5 } }\n',
    ),
    /services\.a\.ulimits: nofile: soft limit 10 is above hard limit 5/,
  );
});

test('keys the specification added after the schema snapshot validate, typos in them are still caught', (t) => {
  const stack = readStackFile(
    file(
      'newer.yml',
      `name: newer
services:
  app:
    image: app
    env_file: [{ path: missing.env, required: false }]
    healthcheck: { test: ["CMD", "true"], start_interval: 1s }
    depends_on: { db: { condition: service_started, required: true, restart: true } }
    ports: [{ target: 80, name: web, app_protocol: http }]
    develop: { watch: [{ path: ./src, action: sync, target: /src }] }
  db:
    image: db
    devices: [{ source: /dev/fuse, target: /dev/fuse, permissions: rwm }]
    build: { context: ., dockerfile_inline: "FROM scratch" }
`,
    ),
    undefined,
    {},
  );
  t.is(stack.stack, 'newer');
  t.deepEqual(stack.services[0]?.env, {}, 'a missing env file that is not required is skipped');
  t.deepEqual(stack.ignored.map((i) => i.path).sort(), [
    'services.app.depends_on.db.restart',
    'services.app.develop',
    'services.app.healthcheck.start_interval',
    'services.app.ports.0.app_protocol',
    'services.app.ports.0.name',
    'services.db.build',
    'services.db.devices',
  ]);
  t.regex(
    problems(
      'typo.yml',
      'services:\n  a:\n    image: x\n    healthcheck: { test: ["CMD", "true"], start_intervall: 1s }\n',
    ),
    /services\.a\.healthcheck\.start_intervall: unknown key "start_intervall"/,
  );
  t.regex(
    problems('inline.yml', 'services:\n  a:\n    image: x\n    env_file: [{ required: false }]\n'),
    /services\.a\.env_file/,
  );
});

test('placement preferences spread by node labels; engine labels and node.id are reported, not refused', (t) => {
  const stack = readStackFile(
    file(
      'spread.yml',
      `services:
  web:
    image: web
    deploy:
      placement:
        constraints: [node.role == worker, engine.labels.operatingsystem == ubuntu]
        preferences: [{ spread: node.labels.zone }, { spread: engine.labels.rack }, { spread: node.id }]
`,
    ),
    'app',
    {},
  );
  t.deepEqual(stack.services[0]?.placement, {
    constraints: ['node.role == worker'],
    preferences: ['node.labels.zone'],
  });
  t.deepEqual(
    stack.ignored.map((i) => i.path),
    [
      'services.web.deploy.placement.constraints.1',
      'services.web.deploy.placement.preferences.1.spread',
      'services.web.deploy.placement.preferences.2.spread',
    ],
  );
  t.regex(stack.ignored[2]?.reason ?? '', /spread across nodes by default/);
});

test('a service name with capitals is taken, lower-cased as Swarm names it; depends_on follows', (t) => {
  const stack = readStackFile(
    file(
      'capitals.yml',
      'services:\n  initContainer:\n    image: x\n  app:\n    image: x\n    depends_on: [initContainer]\n',
    ),
    'app',
    {},
  );
  t.deepEqual(
    stack.services.map((s) => [s.name, s.dependsOn]),
    [
      ['initcontainer', []],
      ['app', ['initcontainer']],
    ],
  );
  const refused = problems(
    'dotted.yml',
    'services:\n  my.app:\n    image: x\n  web:\n    image: x\n    depends_on: [my.app]\n  Web:\n    image: x\n',
  );
  t.regex(
    refused,
    /dotted\.yml:2:\d+: services\.my\.app: a service name is letters, digits, - and _ \(no dots\)/,
  );
  t.regex(refused, /services\.Web: is the same name as service web/);
  t.notRegex(refused, /does not declare/, 'the refused name does not cascade to depends_on');
});

test('secrets and configs: declared values named per stack, references short and long', (t) => {
  file('pw.txt', 's3cret');
  const stack = readStackFile(
    file(
      'values.yml',
      `services:
  db:
    image: db
    secrets: [db_password, { source: api_key, target: key, uid: "999", mode: 0400 }]
    configs: [{ source: conf, target: /etc/app.conf }]
secrets:
  db_password: { file: ./pw.txt }
  api_key: { environment: API_KEY }
configs:
  conf: { content: "a = 1" }
  shared: { external: true }
`,
    ),
    'app',
    { API_KEY: 'k-123' },
  );
  const plain = (data?: string) => Buffer.from(data ?? '', 'base64').toString();
  t.deepEqual(
    stack.values.map((v) => [v.kind, v.name, v.data === undefined ? null : plain(v.data)]),
    [
      ['secrets', 'app_db_password', 's3cret'],
      ['secrets', 'app_api_key', 'k-123'],
      ['configs', 'app_conf', 'a = 1'],
      ['configs', 'shared', null],
    ],
  );
  t.deepEqual(stack.services[0]?.secrets, [
    {
      source: 'app_db_password',
      version: 0,
      target: '/run/secrets/db_password',
      uid: '0',
      gid: '0',
      mode: 0o444,
    },
    {
      source: 'app_api_key',
      version: 0,
      target: '/run/secrets/key',
      uid: '999',
      gid: '0',
      mode: 0o400,
    },
  ]);
  t.like(stack.services[0]?.configs?.[0], { source: 'app_conf', target: '/etc/app.conf' });
  t.regex(
    problems(
      'values-missing.yml',
      'services:\n  a:\n    image: x\n    secrets: [nope]\nsecrets:\n  pw: { file: ./absent.txt }\n',
    ),
    /values-missing\.yml:6:\d+: secrets\.pw\.file: cannot read \.\/absent\.txt: ENOENT/,
  );
  t.regex(
    problems('values-undeclared.yml', 'services:\n  a:\n    image: x\n    secrets: [nope]\n'),
    /services\.a\.secrets\.0: secret "nope" is not declared under the top-level secrets/,
  );
});

test('named volumes: named per stack, with their driver; external and scratch ones do not pin', (t) => {
  const stack = readStackFile(
    file(
      'volumes.yml',
      `services:
  db:
    image: db
    volumes: [data:/var/lib/db, cache:/cache, shared:/shared:ro, ./conf:/etc/db]
volumes:
  data: { driver: local, driver_opts: { type: tmpfs, device: tmpfs } }
  cache: { x-mesh: { scratch: true } }
  shared: { external: true }
`,
    ),
    'app',
    {},
  );
  const [db] = stack.services;
  t.deepEqual(db?.volumes.slice(0, 3), [
    'app_data:/var/lib/db',
    'app_cache:/cache',
    'shared:/shared:ro',
  ]);
  t.deepEqual(db?.namedVolumes, [
    {
      name: 'app_data',
      pinned: true,
      driver: 'local',
      driverOpts: { type: 'tmpfs', device: 'tmpfs' },
    },
    { name: 'app_cache', pinned: false },
    { name: 'shared', pinned: false },
  ]);
});

test('a secret whose file cannot be read is reported once, not again at each service using it', (t) => {
  const message = problems(
    'secret-cascade.yml',
    'services:\n  a:\n    image: x\n    secrets: [pw]\n  b:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw: { file: ./absent.txt }\n',
  );
  t.regex(message, /secrets\.pw\.file: cannot read \.\/absent\.txt: ENOENT/);
  t.notRegex(message, /not declared/);
  t.is(message.match(/absent\.txt/g)?.length, 1);
});

test('logging with options and no driver: the engine default driver takes the options', (t) => {
  const stack = readStackFile(
    file(
      'logging-options.yml',
      'services:\n  a:\n    image: x\n    logging:\n      options: { max-size: 10m, max-file: "3" }\n',
    ),
    'app',
  );
  t.deepEqual(stack.services[0]?.container?.logging, {
    options: { 'max-size': '10m', 'max-file': '3' },
  });
});

test("every key the specification allows in a service's network entry is accepted, each ignored with its reason", (t) => {
  const stack = readStackFile(
    file(
      'network-entry.yml',
      `services:
  a:
    image: x
    networks:
      back:
        aliases: [database]
        ipv4_address: 172.30.0.5
        ipv6_address: "fd00::5"
        link_local_ips: ["169.254.0.5"]
        mac_address: "02:42:ac:11:00:05"
        driver_opts: { com.docker.network.endpoint.sysctls: "net.ipv4.conf.IFNAME.log_martians=1" }
        priority: 100
        gw_priority: 1
        interface_name: eth5
networks:
  back: {}
`,
    ),
    'app',
  );
  const keys = stack.ignored
    .filter((i) => i.path.startsWith('services.a.networks.back.'))
    .map((i) => i.path.split('.').at(-1));
  t.deepEqual(keys, [
    'aliases',
    'ipv4_address',
    'ipv6_address',
    'link_local_ips',
    'mac_address',
    'driver_opts',
    'priority',
    'gw_priority',
    'interface_name',
  ]);
  t.true(stack.ignored.every((i) => i.reason !== 'not applied by mesh'));
});

test('interpolated values take the type of their key, as Compose converts them', (t) => {
  const stack = readStackFile(
    file(
      'typed.yml',
      `services:
  web:
    image: x
    read_only: \${RO}
    deploy:
      replicas: \${REPLICAS:-3}
      update_config: { parallelism: "\${PARALLEL}" }
    ports:
      - target: \${PORT}
        published: 8080
networks:
  back:
    enable_ipv6: \${IPV6:-true}
`,
    ),
    'app',
    { RO: 'false', PARALLEL: '2', PORT: '80' },
  );
  const [web] = stack.services;
  t.is(web?.replicas, 3);
  t.is(web?.update.parallelism, 2);
  t.like(web?.ports[0], { target: 80, published: 8080 });
  t.falsy(web?.container?.readOnly);
  // A value that is not of the key's type is still refused, naming the file, line and key.
  t.regex(
    problems(
      'typed-bad.yml',
      `services:\n  web:\n    image: x\n    deploy:\n      replicas: \${N}\n`,
      { N: 'many' },
    ),
    /typed-bad\.yml:5:\d+: .*services\.web\.deploy\.replicas/,
  );
});

test('each use of an unset variable is a warning naming file and line; an empty source or image is refused', (t) => {
  const stack = readStackFile(
    file(
      'unset.yml',
      `services:\n  web:\n    image: x\n    environment:\n      - ROOT=\${MEDIA_PATH}/media\n    command: echo \${GREETING:-hi}\n`,
    ),
    'app',
    {},
  );
  t.deepEqual(stack.unset, [
    {
      path: 'services.web.environment.0',
      file: join(dir, 'unset.yml'),
      line: 5,
      reason: 'MEDIA_PATH is not set: an empty string is used',
    },
  ]);
  t.regex(
    problems(
      'unset-volume.yml',
      `services:\n  web:\n    image: x\n    volumes: ["\${DATA}:/data"]\n`,
    ),
    /unset-volume\.yml:4:\d+: services\.web\.volumes\.0: ":\/data" has an empty source/,
  );
  t.regex(
    problems('unset-image.yml', `services:\n  web:\n    image: \${IMAGE}\n`),
    /unset-image\.yml:3:\d+: services\.web\.image: is empty/,
  );
});

test('a host IP on a published port is kept: 127.0.0.1 publishes on each node loopback only', (t) => {
  const stack = readStackFile(
    file(
      'host-ip.yml',
      `services:
  db:
    image: x
    ports:
      - "127.0.0.1:3306:3306"
      - "0.0.0.0:8080:80"
      - { target: 9000, published: 9000, host_ip: "10.0.0.5" }
`,
    ),
    'app',
    {},
  );
  t.deepEqual(stack.services[0]?.ports, [
    { target: 3306, protocol: 'tcp', published: 3306, hostIp: '127.0.0.1' },
    { target: 80, protocol: 'tcp', published: 8080 },
    { target: 9000, protocol: 'tcp', published: 9000, hostIp: '10.0.0.5' },
  ]);
  t.deepEqual(stack.ignored, [], 'no warning: the host IP is honoured');
  t.regex(
    problems(
      'host-ip-bad.yml',
      'services:\n  db:\n    image: x\n    ports: ["localhost:3306:3306"]\n',
    ),
    /services\.db\.ports\.0: "localhost" is not an IP address/,
  );
});

test('a file that cannot be read is named with why, in plain words, not at line 0', (t) => {
  const missing = join(dir, 'nope.yml');
  const error = t.throws(() => readStackFile(missing, undefined), { instanceOf: StackFileError });
  t.is(error?.message, `${missing}: no such file`);
  t.is(
    t.throws(() => readStackFile(dir, undefined), { instanceOf: StackFileError })?.message,
    `${dir}: a directory, not a compose file`,
  );
});

test('pull_policy: always and never as written, missing and if_not_present the default, others noted', (t) => {
  const stack = readStackFile(
    file(
      'pull.yml',
      [
        'services:',
        '  a: { image: x, pull_policy: always }',
        '  b: { image: x, pull_policy: never }',
        '  c: { image: x, pull_policy: if_not_present }',
        '  d: { image: x, pull_policy: missing }',
        '  e: { image: x, pull_policy: build }',
      ].join('\n'),
    ),
    'app',
  );
  t.deepEqual(
    stack.services.map((s) => [s.name, s.pull]),
    [
      ['a', 'always'],
      ['b', 'never'],
      ['c', undefined],
      ['d', undefined],
      ['e', undefined],
    ],
  );
  t.deepEqual(
    stack.ignored.map((i) => `${i.path}: ${i.reason}`),
    ['services.e.pull_policy: "build" is not acted on: the image is pulled when missing'],
  );
});

test('bad YAML is said in plain words at its line: a key out of line, a tab, a key given twice', (t) => {
  t.is(
    problems('indent.yml', 'services:\n  web:\n    image: nginx\n   ports: ["80:80"]\n'),
    `${join(dir, 'indent.yml')}:4:1: (top level): ports: ["80:80"] is indented 3 spaces, but the key above it (line 3) is indented 4: keys of one mapping line up (YAML nests by indentation)`,
  );
  t.regex(
    problems('tab.yml', 'services:\n\tweb:\n    image: nginx\n'),
    /tab\.yml:2:1: \(top level\): a tab indents this line: YAML indents with spaces only$/,
  );
  t.regex(
    problems('twice.yml', 'services:\n  web:\n    image: a\n  web:\n    image: b\n'),
    /twice\.yml:4:3: \(top level\): web is given twice in the same mapping: keep one$/,
  );
});

test('several files merge as Compose merges them: scalars replaced, lists appended, keyed lists by key', (t) => {
  const base = file(
    'base.yml',
    [
      'services:',
      '  web:',
      '    image: web:1',
      '    command: ["serve", "--port", "80"]',
      '    environment: ["A=1", "B=2"]',
      '    ports: ["80:80"]',
      '  db:',
      '    image: postgres',
    ].join('\n'),
  );
  const override = file(
    'override.yml',
    [
      'services:',
      '  web:',
      '    image: web:2',
      '    command: ["serve"]',
      '    environment: { B: three, C: "4" }',
      '    ports: ["80:80", "443:443"]',
      '    deploy: { replicas: 3 }',
    ].join('\n'),
  );
  const stack = readStackFile([base, override], 'app');
  const web = stack.services.find((s) => s.name === 'web');
  t.like(web, { image: 'web:2', command: ['serve'], replicas: 3 });
  t.deepEqual(web?.env, { A: '1', B: 'three', C: '4' });
  t.deepEqual(
    web?.ports.map((p) => p.published),
    [80, 443],
    'appended, the repeated one once',
  );
  t.truthy(
    stack.services.find((s) => s.name === 'db'),
    'the base file’s other services stay',
  );
});

test('merged files: a later volume, secret, config or port for the same target replaces the earlier', (t) => {
  file('s.txt', 'x');
  const base = file(
    'uniq-base.yml',
    [
      'services:',
      '  web:',
      '    image: web:1',
      '    volumes: ["data:/var/lib/web", "/etc/web:/etc/web:ro"]',
      '    secrets: [token]',
      '    ports: ["8080:80", { target: 443, published: 8443 }]',
      'volumes: { data: {}, cache: {} }',
      'secrets: { token: { file: ./s.txt }, other: { file: ./s.txt } }',
    ].join('\n'),
  );
  const override = file(
    'uniq-over.yml',
    [
      'services:',
      '  web:',
      '    volumes: ["cache:/var/lib/web", "/tmp/web:/tmp/web"]',
      '    secrets: [{ source: other, target: token }]',
      '    ports: ["9090:90", { target: 443, published: 8443, mode: host }]',
    ].join('\n'),
  );
  const web = readStackFile([base, override], 'app').services.find((s) => s.name === 'web');
  t.deepEqual(web?.volumes, [
    'app_cache:/var/lib/web',
    '/etc/web:/etc/web:ro',
    '/tmp/web:/tmp/web',
  ]);
  t.deepEqual(
    web?.secrets?.map((ref) => [ref.source, ref.target]),
    [['app_other', '/run/secrets/token']],
  );
  t.deepEqual(
    web?.ports.map((p) => `${p.published}:${p.target}${p.mode ? ` ${p.mode}` : ''}`),
    ['8080:80', '8443:443 host', '9090:90'],
    'a port is unique by address, published port, target and protocol',
  );
});

test('a problem in merged files is said where the key is set, in the later file when both set it', (t) => {
  const base = file('b2.yml', 'services:\n  web:\n    image: a\n    stop_grace_period: 1s\n');
  const override = file('o2.yml', 'services:\n  web:\n    stop_grace_period: soon\n');
  t.throws(() => readStackFile([base, override], 'app'), {
    message: new RegExp(
      `^${override.replace(/[.]/g, '\\.')}:3:\\d+: services\\.web\\.stop_grace_period: `,
    ),
  });
});

test('x-mesh autoscale is read with HPA defaults; the service starts at min without replicas', (t) => {
  const stack = readStackFile(
    file(
      'autoscale.yml',
      `services:
  web:
    image: web
    deploy: { resources: { reservations: { cpus: "0.5" } } }
    x-mesh: { autoscale: { min: 2, max: 10, cpu: 60%, rps: 50 } }
  api:
    image: api
    deploy: { replicas: 3, resources: { limits: { memory: 256m } } }
    x-mesh:
      autoscale:
        max: 4
        memory: 80
        tolerance: 5%
        scale_up: { max_step: 1, period: 30s }
        scale_down: { stabilization: 1m, period: 10s, max_step: 2 }
`,
    ),
    'app',
    {},
  );
  const [web, api] = stack.services;
  t.is(web?.replicas, 2);
  t.deepEqual(web?.autoscale, {
    min: 2,
    max: 10,
    targets: { cpu: 60, rps: 50 },
    tolerance: 0.1,
    scaleUp: { periodMs: 15_000 },
    scaleDown: { periodMs: 15_000, stabilizationMs: 300_000 },
  });
  t.is(api?.replicas, 3);
  t.deepEqual(api?.autoscale, {
    min: 1,
    max: 4,
    targets: { memory: 80 },
    tolerance: 0.05,
    scaleUp: { periodMs: 30_000, maxStep: 1 },
    scaleDown: { periodMs: 10_000, maxStep: 2, stabilizationMs: 60_000 },
  });
});

test('x-mesh autoscale mistakes are refused naming file, line and key', (t) => {
  const refused = (name: string, service: string, autoscale: string) =>
    problems(
      name,
      `services:\n  a:\n    image: x\n${service}    x-mesh:\n      autoscale: ${autoscale}\n`,
    );
  const cpu = '    deploy: { resources: { reservations: { cpus: "1" } } }\n';
  t.regex(
    refused('as-minmax.yml', cpu, '{ min: 5, max: 2, cpu: 50 }'),
    /as-minmax\.yml:6:\d+: services\.a\.x-mesh\.autoscale\.min: \(5\) must not be above max \(2\)/,
  );
  t.regex(
    refused('as-max0.yml', cpu, '{ max: 0, cpu: 50 }'),
    /autoscale\.max: must be a whole number >= 1/,
  );
  t.regex(refused('as-nomax.yml', cpu, '{ cpu: 50 }'), /autoscale: needs max/);
  t.regex(
    refused('as-pct.yml', cpu, '{ max: 3, cpu: 0 }'),
    /autoscale\.cpu: must be a percentage above 0/,
  );
  t.regex(
    refused('as-none.yml', cpu, '{ max: 3 }'),
    /autoscale: needs a target: at least one of cpu, memory, rps/,
  );
  t.regex(
    refused('as-key.yml', cpu, '{ max: 3, cpu: 50, cooldown: 1m }'),
    /autoscale\.cooldown: unknown autoscale setting \(min, max, cpu, memory, rps, tolerance, scale_up, scale_down\)/,
  );
  t.regex(
    refused('as-down.yml', cpu, '{ max: 3, cpu: 50, scale_down: { stabilization: soon } }'),
    /autoscale\.scale_down\.stabilization: "soon" is not a duration/,
  );
  t.regex(
    refused('as-global.yml', '    deploy: { mode: global }\n', '{ max: 3, rps: 5 }'),
    /services\.a\.x-mesh\.autoscale: a global service runs one task per node: it cannot autoscale/,
  );
  t.regex(
    refused('as-res.yml', '', '{ max: 3, cpu: 50 }'),
    /as-res\.yml:\d+:\d+: services\.a\.x-mesh\.autoscale\.cpu: is a percentage of the CPU reservation or limit, and the service has neither/,
  );
  t.regex(
    refused('as-mem.yml', cpu, '{ max: 3, memory: 50 }'),
    /autoscale\.memory: is a percentage of the memory reservation or limit/,
  );
  t.regex(
    refused('as-replicas.yml', '    deploy: { replicas: 7 }\n', '{ max: 3, rps: 5 }'),
    /autoscale: deploy\.replicas \(7\) is outside min 1 and max 3/,
  );
});

import test from 'ava';
import { removeLabelled } from '../helpers/containers.js';
import { dockerTest, engine, TEST_IMAGE } from '../helpers/docker.js';
import { bodyOnceAnswering } from '../helpers/poll.js';

// This file's loopback block: 127.0.13.0/24; its containers carry this label.
const LABEL = 'mesh.test=docker-image';
const HOST = '127.0.13.1';

test.after.always(async () => {
  if ('docker' in engine) await removeLabelled(engine.docker, LABEL);
});

dockerTest(
  'the local test image serves pages and CGI on a loopback-published port',
  async (t, docker) => {
    const container = await docker.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'],
      Labels: { 'mesh.test': 'docker-image' },
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: HOST, HostPort: '' }] } },
    });
    await container.start();
    const info = await container.inspect();
    const port = info.NetworkSettings.Ports['8080/tcp']?.[0]?.HostPort;
    t.truthy(port, 'the engine chose a host port');

    const page = await bodyOnceAnswering(`http://${HOST}:${port}/`, 'httpd answering');
    t.is(page, 'mesh test page\n');
    const cgi = await (await fetch(`http://${HOST}:${port}/cgi-bin/whoami`)).text();
    t.regex(cgi, new RegExp(`^host=${info.Config.Hostname}$`, 'm'));
  },
);

import test from 'ava';
import { normalRegistryHost, registryHost, serverAddress } from '../../../mesh/api/registries.js';

test('an image is pulled from the host its first part names, else from Docker Hub', (t) => {
  t.is(registryHost('nginx'), 'docker.io');
  t.is(registryHost('nginx:1.27'), 'docker.io');
  t.is(registryHost('team/app:1'), 'docker.io');
  t.is(registryHost('registry.example.com/team/app:1'), 'registry.example.com');
  t.is(registryHost('Registry.Example.com:5000/app@sha256:abc'), 'registry.example.com:5000');
  t.is(registryHost('127.0.0.1:5000/app'), '127.0.0.1:5000');
  t.is(registryHost('localhost/app'), 'localhost');
  t.is(registryHost('index.docker.io/library/nginx'), 'docker.io');
});

test('a login host is taken as people paste it, and refused when it is no host', (t) => {
  t.is(normalRegistryHost('registry.example.com'), 'registry.example.com');
  t.is(normalRegistryHost('https://Registry.Example.com:5000/'), 'registry.example.com:5000');
  t.is(normalRegistryHost('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
  t.is(normalRegistryHost('index.docker.io'), 'docker.io');
  for (const bad of ['', 'a b', 'host:99999', 'host:0', 'registry.example.com/team', '-x.com'])
    t.is(normalRegistryHost(bad), undefined, bad);
});

test("Docker Hub's credentials are filed under its index address; others under the host", (t) => {
  t.is(serverAddress('docker.io'), 'https://index.docker.io/v1/');
  t.is(serverAddress('registry.example.com:5000'), 'registry.example.com:5000');
});

import test from 'ava';
import { forwardedPath, hostOnly, hostRoutes, matchRoute } from '../../../proxy/http/routes.js';
import { routingTable } from '../../../proxy/routing-table.js';
import { serviceRecord } from '../../helpers/records.js';

const table = routingTable({
  settings: undefined,
  services: [
    serviceRecord({ name: 'web', expose: [8080] }),
    serviceRecord({
      name: 'api',
      expose: [9000, 9001],
      routes: [
        { host: 'shop.example', path: '/api', port: 9000, stripPrefix: true },
        { host: 'shop.example', path: '/api/admin', port: 9001, stripPrefix: false },
      ],
    }),
    serviceRecord({
      name: 'front',
      expose: [80],
      routes: [{ host: 'shop.example', path: '/', port: 80, stripPrefix: false }],
    }),
    serviceRecord({ name: 'worker' }),
  ],
  addresses: new Map(),
  tasks: [],
  statuses: new Map(),
  alive: new Set(),
});
const routes = hostRoutes(table);
const target = (host: string, path: string) => {
  const route = matchRoute(routes, host, path);
  return route && `${route.service.name}:${route.target}${forwardedPath(route, path)}`;
};

test('every service with a port answers as <service>.<stack>.mesh on its first port', (t) => {
  t.is(target('web.s.mesh', '/x'), 'web:8080/x');
  t.is(target('API.S.MESH:80', '/'), 'api:9000/', 'case and port of the Host header do not matter');
  t.is(target('worker.s.mesh', '/'), undefined, 'a service without a port has no route');
});

test('the longest matching prefix wins, at segment boundaries', (t) => {
  t.is(target('shop.example', '/api/admin/users'), 'api:9001/api/admin/users');
  t.is(
    target('shop.example', '/api/users?page=2'),
    'api:9000/users?page=2',
    'the prefix is stripped',
  );
  t.is(target('shop.example', '/api'), 'api:9000/');
  t.is(target('shop.example', '/apiary'), 'front:80/apiary', '/api does not match /apiary');
  t.is(target('shop.example', '/'), 'front:80/');
});

test('an unknown host has no route', (t) => {
  t.is(target('other.example', '/'), undefined);
  t.is(hostOnly('[::1]:8080'), '[::1]');
});

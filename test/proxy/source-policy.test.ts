import test from 'ava';
import type { ServiceRoute } from '../../proxy/routing-table.js';
import { mayReach, SourcePolicy } from '../../proxy/source-policy.js';

// Addresses only classified here: nothing is sent.
const FRONTEND = { subnet: '10.244.80.0/24', network: 'vote_frontend' };
const BACKEND = { subnet: '10.244.81.0/24', network: 'vote_backend' };

const service = (name: string, networks: string[]) =>
  ({ id: `vote.${name}`, networks }) as ServiceRoute;
const redis = service('redis', ['vote_frontend']);
const db = service('db', ['vote_backend']);

function policy(containers: Array<{ addresses: string[]; networks: string[] }>): SourcePolicy {
  const p = new SourcePolicy(new Set(['192.0.2.10']));
  p.setServiceRange('10.250.80.0/24');
  p.setHostNetworks({ bridges: [FRONTEND, BACKEND], containers });
  return p;
}

test('the node itself reaches every service; an address on no bridge of the cluster none', (t) => {
  const p = policy([]);
  for (const ip of ['127.0.0.1', '::1', '192.0.2.10', '10.250.80.7', '::ffff:127.0.0.1'])
    t.true(mayReach(p.classify(ip), redis), ip);
  t.deepEqual(p.classify('10.244.82.5'), { kind: 'outside' });
  t.false(mayReach(p.classify('10.244.82.5'), redis));
});

test('a container on two networks reaches the services of both, whichever address it sends from', (t) => {
  const p = policy([
    { addresses: ['10.244.80.3', '10.244.81.3'], networks: ['vote_frontend', 'vote_backend'] },
  ]);
  for (const ip of ['10.244.80.3', '10.244.81.3']) {
    t.true(mayReach(p.classify(ip), redis), `${ip} reaches redis`);
    t.true(mayReach(p.classify(ip), db), `${ip} reaches db`);
  }
});

test('a container on one network is refused by a service only on the other', (t) => {
  const p = policy([{ addresses: ['10.244.81.4'], networks: ['vote_backend'] }]);
  t.deepEqual(p.classify('10.244.81.4'), { kind: 'container', networks: ['vote_backend'] });
  t.true(mayReach(p.classify('10.244.81.4'), db));
  t.false(mayReach(p.classify('10.244.81.4'), redis));
});

test('a container not listed yet counts with its bridge’s network alone', (t) => {
  const p = policy([]);
  t.deepEqual(p.classify('10.244.81.9'), { kind: 'container', networks: ['vote_backend'] });
  t.false(mayReach(p.classify('10.244.81.9'), redis));
});

test('a listing that puts an address on networks its bridge is not among is not believed', (t) => {
  // The address was another container's, on frontend and elsewhere: now it is on backend.
  const p = policy([{ addresses: ['10.244.81.5'], networks: ['vote_frontend', 'other'] }]);
  t.deepEqual(p.classify('10.244.81.5'), { kind: 'container', networks: ['vote_backend'] });
  t.false(mayReach(p.classify('10.244.81.5'), redis));
});

import test from 'ava';
import { allocateAddresses } from '../../../agent/orchestrator/addresses.js';
import type { ClusterView } from '../../../agent/orchestrator/plan.js';
import type { NetworkSettings } from '../../../mesh/api/network.js';
import { ClusterState } from '../../../mesh/state/cluster-state.js';
import { clusterView, serviceRecord } from '../../helpers/records.js';

const settings: NetworkSettings = { serviceRange: '10.77.0.0/29', bridgeRange: '10.78.0.0/16' };

function view(services: string[], addresses: Record<string, string>, set = true): ClusterView {
  return clusterView(
    services.map((name) => serviceRecord({ name })),
    [],
    {
      nodes: [],
      voters: [],
      settings: set ? settings : undefined,
      addresses: new Map(
        Object.entries(addresses).map(([id, address]) => [
          id,
          { id, version: 7, value: { address } },
        ]),
      ),
    },
  );
}

test('the first leader writes its network settings, once', (t) => {
  const writes = allocateAddresses(view([], {}, false), settings);
  t.deepEqual(writes, [
    { op: 'put', kind: 'settings', id: 'network', value: settings, ifVersion: 0 },
  ]);
  t.deepEqual(allocateAddresses(view([], {}), { ...settings, serviceRange: '10.1.0.0/16' }), []);
});

test('a new service gets the lowest free address, past the network and DNS addresses', (t) => {
  const writes = allocateAddresses(view(['api', 'db', 'web'], { 's.db': '10.77.0.3' }), settings);
  t.deepEqual(writes, [
    { op: 'put', kind: 'addresses', id: 's.api', value: { address: '10.77.0.2' }, ifVersion: 0 },
    { op: 'put', kind: 'addresses', id: 's.web', value: { address: '10.77.0.4' }, ifVersion: 0 },
  ]);
});

test('a removed service frees its address; a kept one keeps it', (t) => {
  const writes = allocateAddresses(
    view(['web'], { 's.web': '10.77.0.5', 's.old': '10.77.0.2' }),
    settings,
  );
  t.deepEqual(writes, [{ op: 'delete', kind: 'addresses', id: 's.old', ifVersion: 7 }]);
});

test('a full range leaves services without an address rather than reusing one', (t) => {
  // /29: .0 network, .1 DNS, .7 broadcast: .2 to .6 for services.
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const writes = allocateAddresses(view(names, {}), settings);
  t.is(writes.length, 5);
  t.is(
    new Set(writes.map((w) => (w.op === 'put' ? (w.value as { address: string }).address : '')))
      .size,
    5,
  );
});

test('the state refuses an address outside the range, taken twice, or of no service', (t) => {
  const state = new ClusterState();
  const put = (kind: 'services' | 'addresses' | 'settings', id: string, value: unknown) =>
    state.apply(state.appliedIndex + 1, { op: 'put', kind, id, value });
  t.true(put('services', 's.web', serviceRecord()).ok);
  t.true(put('services', 's.db', serviceRecord({ name: 'db' })).ok);
  const early = put('addresses', 's.web', { address: '10.77.0.2' });
  t.false(early.ok);
  t.true(put('settings', 'network', settings).ok);
  t.true(put('addresses', 's.web', { address: '10.77.0.2' }).ok);
  const twice = put('addresses', 's.db', { address: '10.77.0.2' });
  t.regex(twice.ok ? '' : twice.reason, /already the address of service s\.web/);
  const outside = put('addresses', 's.db', { address: '10.9.0.2' });
  t.regex(outside.ok ? '' : outside.reason, /outside the service range 10\.77\.0\.0\/29/);
  const orphan = put('addresses', 's.gone', { address: '10.77.0.3' });
  t.regex(orphan.ok ? '' : orphan.reason, /service s\.gone does not exist/);
  t.false(put('settings', 'network', { serviceRange: '10.77.0.1/29', bridgeRange: 'x' }).ok);
});

import {
  freeServiceAddress,
  type NetworkSettings,
  type ServiceAddress,
} from '../../mesh/api/network.js';
import { serviceId } from '../../mesh/api/services.js';
import type { Write } from '../../mesh/state/cluster-state.js';
import type { ClusterView } from './plan.js';

/**
 * Service addresses, as the leader keeps them: the network settings written once (the first
 * leader's choice at `mesh init`), an address for every service that has none (the lowest free
 * one, so it is the same whichever leader plans), and the address of a removed service freed.
 * A service keeps its address across updates: nothing here rewrites one.
 */
export function allocateAddresses(view: ClusterView, preferred: NetworkSettings): Write[] {
  const writes: Write[] = [];
  let settings = view.settings;
  if (!settings) {
    settings = preferred;
    writes.push({ op: 'put', kind: 'settings', id: 'network', value: settings, ifVersion: 0 });
  }
  const services = new Set(view.services.map((s) => serviceId(s.value)));
  const taken = new Set<string>();
  for (const [id, { value, version }] of view.addresses) {
    if (services.has(id)) taken.add(value.address);
    else writes.push({ op: 'delete', kind: 'addresses', id, ifVersion: version });
  }
  for (const id of [...services].sort()) {
    if (view.addresses.has(id)) continue;
    const address = freeServiceAddress(settings.serviceRange, taken);
    // Full (a deploy that would overfill it is refused; this is a cluster from before that check):
    // `mesh ls` shows the service's address as pending.
    if (!address) break;
    taken.add(address);
    const value: ServiceAddress = { address };
    writes.push({ op: 'put', kind: 'addresses', id, value, ifVersion: 0 });
  }
  return writes;
}

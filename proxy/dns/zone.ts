/**
 * The `mesh.` zone as precomputed answers, built from the routing table whenever it changes, so
 * answering is a map lookup and a copy: `<service>.<stack>.mesh` A (the service address) and
 * `_<port>._tcp.<service>.<stack>.mesh` SRV (with the A record as additional data). A name of the
 * zone without records of the asked type gets NODATA, a name not in it NXDOMAIN, both with the SOA.
 */
import { ipToNumber } from '../../mesh/api/network.js';
import type { RoutingTable } from '../routing-table.js';
import { encodeName, pointer, RCODE, record, type Sections, TYPE } from './wire.js';

export const ZONE = 'mesh';
/** Service addresses live as long as their service: short TTLs still let a removal show soon. */
const TTL = 5;
/** Question names start right after the 12-byte header: answers point there. */
const QUESTION = 12;

export interface Zone {
  /** `<type>/<name>` → the sections to send. */
  answers: Map<string, Sections>;
  /** Every name of the zone, empty non-terminals included. */
  names: Set<string>;
  nodata: Sections;
  nxdomain: Sections;
}

export type Lookup = Sections | 'forward';

function soa(serial: number): Buffer {
  const numbers = Buffer.alloc(20);
  for (const [i, n] of [serial, 3600, 600, 86_400, TTL].entries())
    numbers.writeUInt32BE(n >>> 0, i * 4);
  const data = Buffer.concat([encodeName(`ns.${ZONE}`), encodeName(`hostmaster.${ZONE}`), numbers]);
  return record(encodeName(ZONE), TYPE.SOA, TTL, data);
}

function addressData(ip: string): Buffer {
  const data = Buffer.alloc(4);
  data.writeUInt32BE(ipToNumber(ip) ?? 0);
  return data;
}

/** Where a suffix of the question name starts, given the labels before it. */
function suffixOffset(labelsBefore: string[]): number {
  return QUESTION + labelsBefore.reduce((n, label) => n + label.length + 1, 0);
}

export function buildZone(table: RoutingTable, serial: number): Zone {
  const answers = new Map<string, Sections>();
  const names = new Set<string>([ZONE]);
  const authority = soa(serial);
  const answer = (name: string, type: number, body: Buffer, an: number, ar = 0) =>
    answers.set(`${type}/${name}`, { rcode: RCODE.NOERROR, aa: true, body, an, ns: 0, ar });
  answer(ZONE, TYPE.SOA, authority, 1);
  for (const service of table.services) {
    const name = `${service.name}.${service.stack}.${ZONE}`.toLowerCase();
    names.add(`${service.stack}.${ZONE}`.toLowerCase());
    names.add(name);
    if (!service.address) continue;
    const a = record(pointer(QUESTION), TYPE.A, TTL, addressData(service.address));
    answer(name, TYPE.A, a, 1);
    answer(name, TYPE.ANY, a, 1);
    names.add(`_tcp.${name}`);
    for (const port of service.ports) {
      const labels = [`_${port.target}`, '_tcp'];
      const srvName = `${labels.join('.')}.${name}`;
      const target = pointer(suffixOffset(labels));
      const data = Buffer.alloc(6);
      data.writeUInt16BE(0, 0); // priority
      data.writeUInt16BE(0, 2); // weight
      data.writeUInt16BE(port.target, 4);
      const srv = record(pointer(QUESTION), TYPE.SRV, TTL, Buffer.concat([data, target]));
      const glue = record(target, TYPE.A, TTL, addressData(service.address));
      names.add(srvName);
      answer(srvName, TYPE.SRV, Buffer.concat([srv, glue]), 1, 1);
    }
  }
  const negative = (rcode: number): Sections => ({
    rcode,
    aa: true,
    body: authority,
    an: 0,
    ns: 1,
    ar: 0,
  });
  return { answers, names, nodata: negative(RCODE.NOERROR), nxdomain: negative(RCODE.NXDOMAIN) };
}

const LOCAL_NXDOMAIN: Sections = {
  rcode: RCODE.NXDOMAIN,
  aa: false,
  body: Buffer.alloc(0),
  an: 0,
  ns: 0,
  ar: 0,
};

/**
 * The answer to a question: from the zone, or 'forward' for names outside it. A single-label
 * name (what a short name becomes after its search domains failed) is not sent upstream.
 */
export function lookup(zone: Zone, name: string, type: number): Lookup {
  if (name === ZONE || name.endsWith(`.${ZONE}`)) {
    const hit = zone.answers.get(`${type}/${name}`);
    if (hit) return hit;
    return zone.names.has(name) ? zone.nodata : zone.nxdomain;
  }
  if (name !== '' && !name.includes('.')) return LOCAL_NXDOMAIN;
  return 'forward';
}

import test from 'ava';
import DNS from 'dns2';
import { failure, parseQuery, RCODE, respond, TYPE, UDP_MAX } from '../../../proxy/dns/wire.js';
import { buildZone, lookup } from '../../../proxy/dns/zone.js';
import { routingTable } from '../../../proxy/routing-table.js';
import { serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const table = routingTable({
  settings: { serviceRange: '10.77.0.0/24', bridgeRange: '10.78.0.0/16' },
  services: [
    serviceRecord({ name: 'web', expose: [80, 443] }),
    serviceRecord({ name: 'db', expose: [5432] }),
    serviceRecord({ name: 'queued' }),
  ],
  addresses: new Map([
    ['s.web', { address: '10.77.0.2' }],
    ['s.db', { address: '10.77.0.3' }],
  ]),
  tasks: [],
  statuses: new Map(),
  alive: new Set(),
});
const zone = buildZone(table, 7);
const { Packet } = DNS;

/** A query as a resolver sends it, in whatever case it likes (0x20 randomisation). */
function query(name: string, type: number, id = 0x1234): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question(name, type, Packet.CLASS.IN));
  return Buffer.from(packet.toBuffer());
}

function ask(name: string, type: number, max = UDP_MAX) {
  const q = query(name, type);
  const parsed = parseQuery(q);
  if (!parsed || !('question' in parsed)) throw new Error('unparsed');
  const found = lookup(zone, parsed.question.name, parsed.question.type);
  if (found === 'forward') return 'forward' as const;
  return Packet.parse(respond(q, parsed.question, found, max));
}

test('a service name answers its address, with the question as asked', (t) => {
  const answer = ask('Web.S.Mesh', TYPE.A);
  if (answer === 'forward') throw new Error('forwarded');
  t.is(answer.header.id, 0x1234);
  t.is(answer.header.rcode, RCODE.NOERROR);
  t.is(answer.header.aa, 1);
  t.is(answer.questions[0]?.name, 'Web.S.Mesh');
  t.deepEqual(
    answer.answers.map((a) => [a.name, (a as { address?: string }).address]),
    [['Web.S.Mesh', '10.77.0.2']],
  );
});

test('SRV for each port, pointing at the service name, with its address as additional data', (t) => {
  const answer = ask('_443._tcp.web.s.mesh', TYPE.SRV);
  if (answer === 'forward') throw new Error('forwarded');
  const [srv] = answer.answers as Array<{ port: number; target: string; priority: number }>;
  t.is(srv?.port, 443);
  t.is(srv?.target, 'web.s.mesh');
  t.is((answer.additionals[0] as { address?: string } | undefined)?.address, '10.77.0.2');
});

test("SRV follows the ports a service's replicas report: the image's and those seen listening", (t) => {
  const cache = serviceRecord({ name: 'cache' });
  const task = taskRecord(1, 1, 'n1');
  const discovered = routingTable({
    settings: { serviceRange: '10.77.0.0/24', bridgeRange: '10.78.0.0/16' },
    services: [cache],
    addresses: new Map([['s.cache', { address: '10.77.0.4' }]]),
    tasks: [{ ...task, serviceId: 's.cache' }],
    statuses: new Map([
      [task.id, { ...taskStatus('running'), exposed: [6379], listening: [16379] }],
    ]),
    alive: new Set(['n1']),
  });
  const srvZone = buildZone(discovered, 1);
  for (const port of [6379, 16379]) {
    const found = lookup(srvZone, `_${port}._tcp.cache.s.mesh`, TYPE.SRV);
    t.true(found !== srvZone.nxdomain && found !== srvZone.nodata, `SRV for ${port}`);
  }
});

test('NXDOMAIN for a name not in the zone, NODATA for a name without that type', (t) => {
  const missing = ask('nope.s.mesh', TYPE.A);
  const aaaa = ask('web.s.mesh', TYPE.AAAA);
  const stack = ask('s.mesh', TYPE.A);
  const unallocated = ask('queued.s.mesh', TYPE.A);
  for (const [answer, rcode, what] of [
    [missing, RCODE.NXDOMAIN, 'no such service'],
    [aaaa, RCODE.NOERROR, 'no IPv6 address'],
    [stack, RCODE.NOERROR, 'an empty non-terminal'],
    [unallocated, RCODE.NOERROR, 'a service without an address yet'],
  ] as const) {
    if (answer === 'forward') throw new Error('forwarded');
    t.is(answer.header.rcode, rcode, what);
    t.is(answer.answers.length, 0, what);
    t.is(answer.authorities.length, 1, `${what}: the SOA says how long to cache it`);
  }
});

test('names outside the zone are forwarded; a bare single label is not', (t) => {
  t.is(ask('example.org', TYPE.A), 'forward');
  const single = ask('db', TYPE.A);
  if (single === 'forward') throw new Error('forwarded');
  t.is(single.header.rcode, RCODE.NXDOMAIN);
});

test('an answer longer than the UDP limit is truncated, for the client to ask over TCP', (t) => {
  const q = query('_443._tcp.web.s.mesh', TYPE.SRV);
  const parsed = parseQuery(q);
  if (!parsed || !('question' in parsed)) throw new Error('unparsed');
  const found = lookup(zone, parsed.question.name, parsed.question.type);
  if (found === 'forward') throw new Error('forwarded');
  const out = Packet.parse(respond(q, parsed.question, found, 40));
  t.is(out.header.tc, 1);
  t.is(out.answers.length, 0);
});

test('malformed queries get FORMERR, other opcodes NOTIMP, responses nothing', (t) => {
  const q = query('web.s.mesh', TYPE.A);
  const twoQuestions = Buffer.from(q);
  twoQuestions.writeUInt16BE(2, 4);
  t.deepEqual(parseQuery(twoQuestions), { error: RCODE.FORMERR, id: 0x1234 });
  const notify = Buffer.from(q);
  notify.writeUInt16BE(0x2000, 2);
  t.deepEqual(parseQuery(notify), { error: RCODE.NOTIMP, id: 0x1234 });
  const response = Buffer.from(q);
  response.writeUInt16BE(0x8000, 2);
  t.is(parseQuery(response), undefined);
  t.is(parseQuery(q.subarray(0, 15))?.toString(), { error: RCODE.FORMERR, id: 0x1234 }.toString());
  t.is(Packet.parse(failure(q, 9, RCODE.REFUSED)).header.rcode, RCODE.REFUSED);
});

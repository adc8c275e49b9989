/**
 * The leader's round and the nodes' percentages, pure: what counts as a replica's usage, which
 * reports count, what is written and when.
 */
import test from 'ava';
import { autoscaleRound, type Heard, observe } from '../../../agent/autoscaler/round.js';
import { percentUsed } from '../../../agent/autoscaler/usage-sampler.js';
import {
  type AutoscalePolicy,
  type AutoscaleRecord,
  DEFAULT_BEHAVIOUR,
} from '../../../mesh/api/autoscale.js';
import type { ServiceRecord } from '../../../mesh/api/services.js';
import type { TaskStatus } from '../../../mesh/api/tasks.js';
import { serviceRecord, taskRecord, taskStatus } from '../../helpers/records.js';

const POLICY: AutoscalePolicy = { min: 1, max: 5, targets: { cpu: 50 }, ...DEFAULT_BEHAVIOUR };
const NOW = 1_000_000;

const autoscaled = (overrides: Partial<ServiceRecord> = {}) =>
  serviceRecord({ replicas: 2, autoscale: POLICY, ...overrides });
const tasks = [taskRecord(1, 1, 'n1'), taskRecord(2, 1, 'n2')];
const ready = new Map<string, TaskStatus>([
  ['s.web.1.v1', taskStatus('running', 'n1')],
  ['s.web.2.v1', taskStatus('running', 'n2')],
]);
const heard = (node: string, task: string, cpu: number, at = NOW): Heard => ({
  node,
  at,
  report: { tasks: [{ task, cpu }], served: [] },
});
const hot = [heard('n1', 's.web.1.v1', 100), heard('n2', 's.web.2.v1', 100)];

const view = (service: ServiceRecord, records = new Map()) => ({
  services: [{ value: service, version: 7 }],
  tasks,
  statuses: ready,
  records,
});

test('a task counts only as its own node reports it, and only while ready', (t) => {
  const service = autoscaled();
  const notReady = new Map(ready);
  notReady.set('s.web.2.v1', { ...taskStatus('running', 'n2'), ready: false });
  // n2 speaks for n1's task: not heard.
  const observation = observe(service, tasks, notReady, [heard('n2', 's.web.1.v1', 90)], NOW);
  t.deepEqual(observation, { now: NOW, replicas: 2, ready: 1, usage: [] });
  t.deepEqual(observe(service, tasks, ready, hot, NOW).usage, [
    { cpu: 100, memory: undefined },
    { cpu: 100, memory: undefined },
  ]);
});

test('a stale report is not counted; request rates of every fresh node add up', (t) => {
  const service = autoscaled({ autoscale: { ...POLICY, targets: { rps: 10 } } });
  const served = (node: string, rps: number, at: number): Heard => ({
    node,
    at,
    report: { tasks: [], served: [{ service: 's.web', rps }] },
  });
  const observation = observe(
    service,
    tasks,
    ready,
    [served('n1', 30, NOW), served('n2', 12, NOW - 1000), served('n3', 500, NOW - 60_000)],
    NOW,
  );
  t.is(observation.rps, 42);
  t.is(observe(service, tasks, ready, [], NOW).rps, undefined, 'nothing heard: no rate at all');
});

test('a decision that changes the count writes the service (at its version) and the record together', (t) => {
  const [batch, ...rest] = autoscaleRound(view(autoscaled()), hot, NOW);
  t.deepEqual(rest, []);
  t.like(batch?.scaling, { service: 's.web', from: 2, to: 4 });
  const [service, record] = batch?.writes ?? [];
  t.like(service, {
    op: 'put',
    kind: 'services',
    id: 's.web',
    ifVersion: 7,
    value: { replicas: 4 },
  });
  t.like(record, {
    op: 'put',
    kind: 'autoscaling',
    id: 's.web',
    value: { decidedAt: NOW, observed: { cpu: 100 }, decisions: [{ at: NOW, from: 2, to: 4 }] },
  });
});

test('without a change the record is written when it is older than 15 s or metrics appeared, not every round', (t) => {
  const calm = [heard('n1', 's.web.1.v1', 50), heard('n2', 's.web.2.v1', 50)];
  const [first] = autoscaleRound(view(autoscaled()), calm, NOW);
  t.is(first?.scaling, undefined);
  const [write] = first?.writes ?? [];
  if (write?.op !== 'put') throw new Error('the record is not written');
  const records = new Map([['s.web', write.value as AutoscaleRecord]]);
  t.deepEqual(autoscaleRound(view(autoscaled(), records), calm, NOW + 5000), []);
  t.is(autoscaleRound(view(autoscaled(), records), calm, NOW + 15_000).length, 1);
  // Written before metrics came: the first ones are told at once.
  const blind = new Map([['s.web', { ...(write.value as AutoscaleRecord), observed: {} }]]);
  t.is(autoscaleRound(view(autoscaled(), blind), calm, NOW + 5000).length, 1);
});

test('a service in a rollout is left alone; the record of one no longer autoscaled goes', (t) => {
  const updating = autoscaled({ rollout: { state: 'updating', startedAt: '' } });
  t.deepEqual(autoscaleRound(view(updating), hot, NOW), []);
  const plain = serviceRecord();
  t.deepEqual(autoscaleRound(view(plain, new Map([['s.web', {} as never]])), hot, NOW), [
    { writes: [{ op: 'delete', kind: 'autoscaling', id: 's.web' }] },
  ]);
});

test('usage is a percentage of the reservation, or of the limit without one; CPU needs two samples', (t) => {
  const reserved = { limits: { cpus: 2 }, reservations: { cpus: 0.5, memoryBytes: 100 } };
  const usage = { cpuNs: 2e9, memoryBytes: 25 };
  t.deepEqual(percentUsed(reserved, undefined, 10_000, usage), { memory: 25 });
  // 0.25 s of CPU in 1 s is half of the half CPU reserved.
  t.deepEqual(percentUsed(reserved, { at: 9000, cpuNs: 1.75e9 }, 10_000, usage), {
    cpu: 50,
    memory: 25,
  });
  const limited = {
    limits: { cpus: 2, memoryBytes: 50 },
    reservations: { cpus: 0, memoryBytes: 0 },
  };
  t.deepEqual(percentUsed(limited, { at: 9000, cpuNs: 1e9 }, 10_000, usage), {
    cpu: 50,
    memory: 50,
  });
  // A restarted task has less CPU time than before: no rate this once.
  t.deepEqual(percentUsed(reserved, { at: 9000, cpuNs: 5e9 }, 10_000, usage), { memory: 25 });
});

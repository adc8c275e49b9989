/** What a deploy does to an autoscaled service's record, and the checks every replica applies. */
import test from 'ava';
import { type AutoscalePolicy, DEFAULT_BEHAVIOUR } from '../../../mesh/api/autoscale.js';
import { checkService, updatedRecord } from '../../../mesh/api/services.js';
import { serviceRecord } from '../../helpers/records.js';

const POLICY: AutoscalePolicy = { min: 2, max: 6, targets: { rps: 50 }, ...DEFAULT_BEHAVIOUR };

test('a deploy keeps the count the autoscaler reached, within the new bounds, and replaces no task', (t) => {
  const stored = serviceRecord({ replicas: 5, autoscale: POLICY });
  const same = updatedRecord(stored, { ...stored, replicas: 2 }, 'now');
  t.is(same.change, 'unchanged');
  t.is(same.record.replicas, 5);
  const narrower = updatedRecord(stored, { ...stored, autoscale: { ...POLICY, max: 4 } }, 'now');
  t.is(narrower.change, 'scaled', 'new bounds: no new version, no task replaced');
  t.like(narrower.record, { version: 1, replicas: 4, autoscale: { max: 4 } });
  const manual = updatedRecord(stored, { ...serviceRecord({ replicas: 3 }) }, 'now');
  t.like(manual.record, { replicas: 3, version: 1 });
  t.is(manual.record.autoscale, undefined, 'taken out of the file: the count is the file’s again');
});

test('every replica refuses an autoscaled global service, or a cpu target without a reservation', (t) => {
  t.regex(
    checkService(serviceRecord({ mode: 'global', autoscale: POLICY }), 'services/s.web') ?? '',
    /services\/s\.web\.autoscale: a global service runs one task per node/,
  );
  const cpu = { ...POLICY, targets: { cpu: 60 } };
  t.regex(
    checkService(serviceRecord({ autoscale: cpu }), 'services/s.web') ?? '',
    /services\/s\.web\.autoscale\.targets\.cpu is a percentage of the CPU reservation or limit/,
  );
  t.regex(
    checkService(serviceRecord({ autoscale: { ...POLICY, min: 7 } }), 'services/s.web') ?? '',
    /autoscale\.min \(7\) must not be above max \(6\)/,
  );
  t.is(checkService(serviceRecord({ autoscale: POLICY }), 'services/s.web'), undefined);
});

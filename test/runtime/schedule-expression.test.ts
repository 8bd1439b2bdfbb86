/** EventBridge Scheduler expressions and time zones, as the Scheduler user guide defines them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateScheduleExpression, validateTimeZone } from '../../runtime/schedule-expression';

const VALID = [
  'cron(0 6 * * ? *)',
  'cron(0/15 * * * ? *)',
  'cron(15 10 ? * MON-FRI *)',
  'cron(0 8 1 JAN,JUL ? 2027-2030)',
  'cron(0 18 L * ? *)',
  'cron(0 9 15W * ? *)',
  'cron(0 9 ? * 6L *)',
  'cron(0 9 ? * 2#1 *)',
  'cron(30 23 ? * SUN,SAT *)',
  'rate(1 minute)',
  'rate(5 minutes)',
  'rate(1 hour)',
  'rate(6 hours)',
  'rate(1 day)',
  'rate(7 days)',
  'at(2030-01-31T06:00:00)',
];

const INVALID: [string, RegExp][] = [
  ['cron(0 6 * * * *)', /exactly one of day-of-month \("\*"\) and day-of-week \("\*"\) must be "\?"/],
  ['cron(0 6 1 * MON *)', /exactly one of day-of-month/],
  ['cron(0 6 ? * ? *)', /exactly one of day-of-month/],
  ['cron(0 6 * * ?)', /has 5 fields/],
  ['cron(0 0 6 * * ? *)', /has 7 fields/],
  ['cron(60 6 * * ? *)', /minutes "60" is not a valid minutes value \(0-59\)/],
  ['cron(0 24 * * ? *)', /hours "24"/],
  ['cron(0 6 32 * ? *)', /day-of-month "32"/],
  ['cron(0 6 0 * ? *)', /day-of-month "0"/],
  ['cron(0 6 * 13 ? *)', /month "13"/],
  ['cron(0 6 * FOO ? *)', /month "FOO"/],
  ['cron(0 6 ? * 8 *)', /day-of-week "8"/],
  ['cron(0 6 ? * 2#6 *)', /week of the month after # must be 1-5/],
  ['cron(0 6 * * ? 1969)', /year "1969"/],
  ['cron(0/0 6 * * ? *)', /step after \/ must be/],
  ['cron(? 6 * * ? *)', /exactly one|"\?" is allowed only/],
  ['cron(0 ? * * ? *)', /exactly one|"\?" is allowed only/],
  ['cron(0 6 L * ? *) extra', /must be cron/],
  ['rate(1 hours)', /write "1 hour"/],
  ['rate(2 hour)', /write "2 hours"/],
  ['rate(0 minutes)', /at least 1/],
  ['rate(1.5 hours)', /whole number/],
  ['rate(3 weeks)', /minute\(s\), hour\(s\) or day\(s\)/],
  ['at(2030-02-30T06:00:00)', /real date/],
  ['at(2030-01-31 06:00:00)', /at\(yyyy-mm-ddThh:mm:ss\)/],
  ['0 6 * * ? *', /must be cron\(\.\.\.\), rate\(\.\.\.\) or at\(\.\.\.\)/],
];

describe('schedule expressions', () => {
  test('valid cron, rate and at expressions pass', () => {
    for (const e of VALID) assert.equal(validateScheduleExpression(e), undefined, e);
  });

  test('each invalid expression is refused with its reason', () => {
    for (const [e, reason] of INVALID) {
      const problem = validateScheduleExpression(e) ?? 'accepted';
      assert.match(problem, reason, `${e} -> ${problem}`);
    }
  });

  test('time zones: the IANA list plus UTC; no planets, offsets or abbreviations', () => {
    for (const z of ['UTC', 'America/Los_Angeles', 'Europe/Paris', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires', 'US/Pacific']) {
      assert.equal(validateTimeZone(z), undefined, z);
    }
    for (const z of ['Mars/Olympus', '+02:00', 'PST', 'Europe/Atlantis', '', 'utc/x']) {
      assert.match(validateTimeZone(z) ?? 'accepted', /is not an IANA time zone name/, z);
    }
  });
});

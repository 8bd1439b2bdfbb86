/** Development: cheap, disposable, schedule off (start runs by hand or with `aws stepfunctions start-execution`). */
export const devConfig = {
  name: 'dev',
  scheduleEnabled: false,
  removalPolicy: 'destroy',
  // The cheap environment (docs/cost.md): no customer-managed keys and no dashboard, 2 USD a month
  // less than prod's keys and 3 USD less than its dashboard. Set either back to compare with prod.
  encryption: 'aws-managed',
  dashboard: false,
  logRetentionDays: 14,
  data: {
    rawInfrequentAccessAfterDays: 30,
    rawNoncurrentExpireAfterDays: 7,
    athenaResultsExpireAfterDays: 3,
    accessLogsExpireAfterDays: 30,
  },
  athena: { bytesScannedCutoffPerQuery: 10 * 1024 ** 3 },
  fetcher: { memoryMiB: 512, timeoutSeconds: 900 },
  transform: { cpu: 1024, memoryMiB: 4096 },
  orchestration: { runTimeoutMinutes: 180, freshnessAlarmSeconds: 1800 },
};

/** Production: data retained, schedule on, longer log retention, alarms mailed. */
export const prodConfig = {
  name: 'prod',
  scheduleEnabled: true,
  removalPolicy: 'retain',
  logRetentionDays: 90,
  // Set to a monitored mailbox; the subscription must be confirmed once from that mailbox.
  alarmEmail: 'data-platform-alerts@example.org',
  data: {
    rawInfrequentAccessAfterDays: 30,
    rawNoncurrentExpireAfterDays: 30,
    athenaResultsExpireAfterDays: 7,
    accessLogsExpireAfterDays: 365,
  },
  athena: { bytesScannedCutoffPerQuery: 100 * 1024 ** 3 },
  fetcher: { memoryMiB: 1024, timeoutSeconds: 900 },
  transform: { cpu: 2048, memoryMiB: 8192 },
  orchestration: { runTimeoutMinutes: 360, freshnessAlarmSeconds: 1800 },
};

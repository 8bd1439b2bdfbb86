/** Production: data retained, schedule on, longer log retention, alarms mailed. */
export const prodConfig = {
  name: 'prod',
  scheduleEnabled: true,
  removalPolicy: 'retain',
  encryption: 'customer-managed',
  dashboard: true,
  logRetentionDays: 90,
  // No committed address and repository: synth fails until both are given
  // (-c alarmEmail=... / ALARM_EMAIL, -c githubRepository=owner/name / GITHUB_REPOSITORY).
  // The e-mail subscription must be confirmed once from that mailbox.
  requiredSettings: ['alarmEmail', 'githubRepository'],
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

/**
 * The IAM simulation (iam-simulation.test.ts) for prod: customer-managed keys, so every S3 call
 * also needs the data key through S3, the crawler logs are KMS-encrypted and publishing to the
 * topic needs its key. A test process of its own, so the handlers read prod's configuration.
 */
process.env.IAM_SIMULATION_ENV = 'prod';
await import('./iam-simulation.test');

export {};

#!/usr/bin/env node
/** CDK entry point: wires the stacks of one environment (`-c env=dev|prod`) from configuration. */
import { App } from 'aws-cdk-lib';
import { buildPipelineApp } from '../lib/pipeline-app';

const app = new App();
try {
  buildPipelineApp(app);
} catch (err) {
  // A configuration mistake (a missing deploy setting, a bad dataset file) is the user's to fix:
  // its message names what to set, and a stack trace would only bury it.
  const e = err as Error;
  if (e.name !== 'EnvironmentConfigError' && e.name !== 'DatasetConfigError') throw err;
  process.stderr.write(`${e.message}\n`);
  process.exit(2);
}
app.synth();

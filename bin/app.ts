#!/usr/bin/env node
/** CDK entry point: wires the stacks of one environment (`-c env=dev|prod`) from configuration. */
import { App } from 'aws-cdk-lib';
import { buildPipelineApp } from '../lib/pipeline-app';
import { errorCategory, exitCodeFor } from '../runtime/pipeline-error';

const app = new App();
try {
  buildPipelineApp(app);
} catch (err) {
  // A configuration mistake (a missing deploy setting, a bad dataset file) is the user's to fix:
  // its message names what to set, and a stack trace would only bury it.
  if (errorCategory(err) !== 'config') throw err;
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(exitCodeFor(err));
}
app.synth();

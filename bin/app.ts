#!/usr/bin/env node
/** CDK entry point: wires the stacks of one environment (`-c env=dev|prod`) from configuration. */
import { App } from 'aws-cdk-lib';
import { buildPipelineApp } from '../lib/pipeline-app';

const app = new App();
buildPipelineApp(app);
app.synth();

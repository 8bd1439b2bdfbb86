/**
 * Synthesizes the app the way `cdk synth -c env=<name>` does (cdk.json feature flags, cdk-nag
 * plugin), once per environment and options per test process: synth is the slow part.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildPipelineApp, type PipelineApp } from '../../lib/pipeline-app';

export const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

export interface SynthOptions {
  readonly env?: string;
  /** Bundle the fetcher with esbuild (slow); template tests skip bundling. */
  readonly bundle?: boolean;
  readonly datasetsDir?: string;
  /** More `-c key=value` context (deploy settings such as githubOidcSubjectPrefix). */
  readonly context?: Readonly<Record<string, string>>;
}

export interface SynthResult extends PipelineApp {
  readonly assembly: CloudAssembly;
  readonly outdir: string;
  /** `dataset`: the stack of the first dataset file (the only one in `datasets/`). */
  readonly templates: { storage: Template; shared: Template; dataset: Template; cicd: Template };
}

/** A fresh App with the project's context plus test overrides. */
export function newApp(options: SynthOptions = {}): App {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'cdk-test-'));
  return new App({
    outdir,
    context: {
      ...cdkJson.context,
      env: options.env ?? 'dev',
      // Prod refuses to synthesize without these (lib/config/prod.ts requiredSettings); tests give
      // them as `cdk synth -c` would, and as context they win over GITHUB_REPOSITORY on GitHub CI.
      githubRepository: 'example-org/socrata-athena-pipeline',
      ...(options.env === 'prod' ? { alarmEmail: 'data-platform-alerts@example.org' } : {}),
      ...(options.datasetsDir ? { datasetsDir: options.datasetsDir } : {}),
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...options.context,
    },
  });
}

const cache = new Map<string, SynthResult>();

export function synth(options: SynthOptions = {}): SynthResult {
  const key = JSON.stringify(options);
  const hit = cache.get(key);
  if (hit) return hit;
  const app = newApp(options);
  const built = buildPipelineApp(app);
  const assembly = app.synth();
  const result: SynthResult = {
    ...built,
    assembly,
    outdir: assembly.directory,
    templates: {
      storage: Template.fromStack(built.storage),
      shared: Template.fromStack(built.shared),
      dataset: Template.fromStack(built.datasetStacks[0]!),
      cicd: Template.fromStack(built.cicd),
    },
  };
  cache.set(key, result);
  return result;
}

/** A state machine's definition as an object; intrinsic parts become `<intrinsic>` placeholders. */
export function stateMachineDefinition(template: Template): { StartAt: string; States: Record<string, Record<string, unknown>>; TimeoutSeconds?: number } {
  const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const def = (machines[0] as { Properties: { DefinitionString: unknown } }).Properties.DefinitionString;
  const text =
    typeof def === 'string'
      ? def
      : ((def as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : '<intrinsic>')).join(''));
  return JSON.parse(text);
}

/** Every IAM policy statement attached to the role whose logical id contains `roleHint`. */
export function statementsOfRole(template: Template, roleHint: string): Array<Record<string, unknown>> {
  const policies = template.findResources('AWS::IAM::Policy');
  const out: Array<Record<string, unknown>> = [];
  for (const p of Object.values(policies) as Array<{ Properties: { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Array<Record<string, unknown>> } } }>) {
    if (p.Properties.Roles.some((r) => r.Ref.includes(roleHint))) out.push(...p.Properties.PolicyDocument.Statement);
  }
  return out;
}

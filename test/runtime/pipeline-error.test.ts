/**
 * What a command reads off an error (runtime/pipeline-error.ts): its exit code from its category,
 * the run protocol's codes; its name; its cause; and the same after it crossed a process boundary.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import {
  ConfigError,
  errorCategory,
  errorFromReport,
  errorReport,
  exitCodeFor,
  PipelineError,
  RefusedError,
  SourceError,
  UsageError,
} from '../../runtime/pipeline-error';
import { TRANSFORM_EXIT } from '../../runtime/run-protocol';
import { DatasetConfigError } from '../../runtime/dataset-config';
import { MassDeleteRefusedError } from '../../containers/transform/src/transform';
import { SelectionError } from '../../containers/transform/src/models';
import { SocrataRequestError } from '../../lambdas/fetcher/sources/socrata/socrata-client';

describe('PipelineError', () => {
  test('the exit code follows the category: usage and configuration 2, a refused mass delete 4, the rest 1, an error not ours 1', () => {
    assert.equal(exitCodeFor(new UsageError('x')), TRANSFORM_EXIT.config);
    assert.equal(exitCodeFor(new DatasetConfigError('x')), TRANSFORM_EXIT.config);
    assert.equal(exitCodeFor(new SelectionError('x')), TRANSFORM_EXIT.config, 'a ModelError subclass is configuration');
    assert.equal(exitCodeFor(new MassDeleteRefusedError('x')), TRANSFORM_EXIT.massDeleteRefused);
    assert.equal(exitCodeFor(new SocrataRequestError('x', 500, 'https://example.org')), TRANSFORM_EXIT.failed);
    assert.equal(exitCodeFor(new Error('x')), TRANSFORM_EXIT.failed);
    assert.equal(exitCodeFor('a string'), TRANSFORM_EXIT.failed);
    assert.equal(errorCategory(new Error('x')), undefined);
    assert.equal(errorCategory(new SelectionError('x')), 'config');
  });

  test('the name is the class name, with or without a literal; the cause is kept', () => {
    class LocalThingError extends SourceError {}
    const cause = new Error('root');
    const e = new LocalThingError('failed', { cause });
    assert.equal(e.name, 'LocalThingError');
    assert.equal(e.cause, cause);
    assert.ok(e instanceof PipelineError && e instanceof Error);
    assert.equal(new MassDeleteRefusedError('x').name, 'MassDeleteRefusedError');
  });

  test('category and exit code do not change how an error prints or logs', () => {
    const e = new ConfigError('bad');
    assert.deepEqual(Object.keys(e), ['name'], 'only the name is an own property, as before the base');
    assert.doesNotMatch(inspect(e), /category|exitCode/);
  });

  test('across a process boundary the name, category, exit code and hint survive; an error not ours stays plain', () => {
    const refused = new MassDeleteRefusedError('would delete 90% of curated');
    refused.hint = 'run with --rows 500';
    const back = errorFromReport(structuredClone(errorReport(refused)));
    assert.ok(back instanceof PipelineError);
    assert.equal(back.name, 'MassDeleteRefusedError');
    assert.equal(back.message, 'would delete 90% of curated');
    assert.equal(back.category, 'refused');
    assert.equal(back.exitCode, TRANSFORM_EXIT.massDeleteRefused);
    assert.equal(back.hint, 'run with --rows 500');

    const plain = errorFromReport(structuredClone(errorReport(Object.assign(new TypeError('boom'), { name: 'TypeError' }))));
    assert.ok(!(plain instanceof PipelineError));
    assert.equal(plain.name, 'TypeError');
    assert.equal(exitCodeFor(plain), TRANSFORM_EXIT.failed);
    assert.deepEqual(errorReport('not an error'), { name: 'Error', message: 'not an error' });
    assert.equal(errorCategory(errorFromReport(errorReport(new RefusedError('x')))), 'refused');
  });
});

import { ConfigError } from '../../../runtime/pipeline-error';

/** A model or model-properties file is wrong: the message names the file (and line) and what to change. */
export class ModelError extends ConfigError {
  override name = 'ModelError';
}

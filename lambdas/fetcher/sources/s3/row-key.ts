/**
 * The primary key of a file row as one value in one field, which is all the fetcher's phases
 * check and compare (quarantine.ts `keyProblem`, the key scan's `keyText`): a top-level field is
 * used as it is; a nested path (`data.id`) or a composite key (`["on", "data.id", "at"]`) is
 * computed into a key field of the row.
 *
 * A composite key is the JSON text of its parts' values in order (`["2025-07-01","V-9",3]`): JSON
 * quotes strings and escapes their quotes and separators, so two different tuples never give the
 * same text (`["a,b","c"]` and `["a","b,c"]` differ), and a number and the string of its digits
 * stay apart as they would in a SQL tuple.
 */
import { keyExtractor, type KeyPartProblem, type KeyValue } from '../../../../runtime/file-formats';

export interface RowKeySpec {
  /** One field path or the paths of a composite key, in order. */
  parts: string | readonly string[];
  /** The field the key is written to. Default: the one part, when it is a top-level field. */
  column?: string;
}

/** A key's value for the row, or why there is none (absent parts win over invalid ones). */
export type RowKey = { ok: true; value: KeyValue } | { ok: false; value: unknown; problems: KeyPartProblem[] };

export class RowKeyBuilder {
  /** The field that holds the key in every row handed to the fetcher. */
  readonly column: string;
  /** False when the key is a top-level field of the record already (nothing to write). */
  readonly computed: boolean;
  private readonly extract: ReturnType<typeof keyExtractor>;
  private readonly composite: boolean;
  private readonly parts: readonly string[];

  constructor(spec: RowKeySpec) {
    this.parts = typeof spec.parts === 'string' ? [spec.parts] : [...spec.parts];
    this.extract = keyExtractor(this.parts);
    this.composite = this.parts.length > 1;
    const single = this.parts.length === 1 && !this.parts[0]!.includes('.') ? this.parts[0]! : undefined;
    const column = spec.column ?? single;
    if (!column) {
      throw new Error(`the key ${JSON.stringify(spec.parts)} is nested or composite: name the field its value is written to (the dataset's primary key column)`);
    }
    if (column.startsWith(':')) throw new Error(`the key field ${JSON.stringify(column)} may not start with ":" (system fields are not loaded)`);
    this.column = column;
    this.computed = column !== single;
  }

  of(record: Record<string, unknown>): RowKey {
    const result = this.extract(record);
    if (result.ok) return { ok: true, value: this.composite ? JSON.stringify(result.values) : result.values[0]! };
    const missing = result.problems.some((p) => p.reason === 'missing_primary_key');
    // The value the fetcher's own check then quarantines under the same reason: absent, or the
    // non-scalar part itself.
    return { ok: false, value: missing ? undefined : invalidValue(result.problems), problems: result.problems };
  }
}

/** A stand-in non-scalar for an invalid key: the fetcher quarantines an object as invalid_primary_key. */
const invalidValue = (problems: KeyPartProblem[]): Record<string, string> => Object.fromEntries(problems.map((p) => [p.part, p.detail]));

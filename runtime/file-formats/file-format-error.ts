/**
 * A file that cannot be read on: the reader stops, and the message names where (1-based line of
 * the decompressed text and 0-based byte offset in it, or the compressed byte offset for gzip).
 * Rows that are merely malformed are not errors: they come out as problem rows and reading goes on.
 */
import { DataError } from '../pipeline-error';

export interface FilePosition {
  /** 1-based line in the decompressed text where the trouble is (or the record that has it starts). */
  line: number;
  /** 0-based byte offset in the decompressed text (the UTF-8 BOM, when present, counts). */
  byteOffset: number;
}

export class FileFormatError extends DataError {
  override readonly name = 'FileFormatError';

  constructor(
    message: string,
    /** Undefined when the trouble is before any text (a bad option, a corrupt gzip header). */
    readonly position: FilePosition | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

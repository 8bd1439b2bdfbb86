/** Streaming readers for file sources (CSV, NDJSON, JSON arrays; gzip or not) and nested-field access. */
export { readRecords, DEFAULT_MAX_RAW_BYTES, type ByteInput, DEFAULT_MAX_RECORD_BYTES, type Compression, type FileFormat, type ReadRecordsOptions } from './read-records';
export { csvField, recordLines } from './write-records';
export { isProblem, type ProblemItem, type ReadItem, type RecordItem } from './record-parser';
export { FileFormatError, type FilePosition } from './file-format-error';
export { compilePath, keyExtractor, valueAt, type KeyPartProblem, type KeyResult, type KeyValue, type RecordPath } from './record-path';

/**
 * Columns read from a source field of another name (a dataset's `columns[].field`: a CSV header
 * such as `Order ID`, which is not an identifier): the row carries the column, not the field, so
 * raw, curated and the fetcher's key checks see one name. Shared by the file and S3 adapters.
 */

/** Column name → source field name, as the fetcher's COLUMN_FIELDS holds them. */
export type ColumnFields = Readonly<Record<string, string>>;

/**
 * The record with each renamed field under its column's name (absent when the field is). Read
 * from the record as it came, so a column named like another column's field is never overwritten.
 */
export function renameFields(record: Record<string, unknown>, fields: readonly (readonly [column: string, field: string])[]): Record<string, unknown> {
  if (!fields.length) return record;
  const row = { ...record };
  for (const [, field] of fields) delete row[field];
  for (const [column, field] of fields) {
    const value = record[field];
    if (value !== undefined) row[column] = value;
    else delete row[column];
  }
  return row;
}

/** The entries of a ColumnFields, checked once when an adapter is made. */
export function fieldEntries(fields: ColumnFields | undefined, source: string): [string, string][] {
  return Object.entries(fields ?? {}).map(([column, field]) => {
    if (!column || column.startsWith(':') || !field) throw new Error(`column ${JSON.stringify(column)} of ${source}: a column and a field name are needed, and no column may start with ":"`);
    return [column, field];
  });
}

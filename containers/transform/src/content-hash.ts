/**
 * `_content_hash`: a digest of a row's declared columns as typed values, kept in curated so the
 * merge can tell a new *version* of a key (`:updated_at` moved, e.g. a publisher's full replace)
 * from new *content*. A row is updated only when it is newer AND its hash differs.
 *
 * Canonical serialization (identical on both engines for the same typed values):
 *   each hashed column, in curated order, becomes `<length>:<text>` or `-` when NULL, joined by
 *   `,`; the hash is the lowercase hex MD5 of the UTF-8 bytes of that string. `<text>` per type:
 *     VARCHAR    the string itself
 *     BIGINT     decimal digits (CAST AS varchar)
 *     DOUBLE     CAST(CAST(x AS decimal(38, 9)) AS varchar), e.g. `1000.500000000`; a value
 *                beyond decimal(38, 9) falls back to the engine's own double text (engines may
 *                then disagree, which only matters when comparing hashes across engines)
 *     TIMESTAMP  `YYYY-MM-DDTHH:MM:SS.ffffff` (microseconds)
 *     BOOLEAN    `true` / `false`
 *   The length prefix makes the encoding unambiguous (no separator can be forged by a value).
 * Point columns are hashed through their longitude/latitude doubles: the GeoJSON text is
 * formatted differently by each engine, the coordinates are not.
 * DuckDB: md5(s) is already lowercase hex. Trino: lower(to_hex(md5(to_utf8(s)))).
 */
import { CONTENT_HASH_COLUMN, INGESTION_METADATA } from '../../../runtime/dataset-config';
import { ident, type CuratedType, type Dialect } from './dialect';
import type { CuratedColumn } from './columns';

export { CONTENT_HASH_COLUMN };

const METADATA: ReadonlySet<string> = new Set([...Object.values(INGESTION_METADATA), CONTENT_HASH_COLUMN]);

/** The curated columns the hash covers: the declared ones (points by their coordinates). */
export function hashedColumns(columns: CuratedColumn[]): CuratedColumn[] {
  return columns.filter((c) => !METADATA.has(c.name) && !c.point);
}

/** Canonical text of a typed value (see the module comment); NULL stays NULL. */
export function canonicalText(expr: string, type: CuratedType, dialect: Dialect): string {
  const varchar = dialect.typeName('VARCHAR');
  switch (type) {
    case 'VARCHAR':
      return expr;
    case 'BIGINT':
    case 'BOOLEAN':
      return `CAST(${expr} AS ${varchar})`;
    case 'DOUBLE':
      return `coalesce(CAST(TRY_CAST(${expr} AS decimal(38, 9)) AS ${varchar}), CAST(${expr} AS ${varchar}))`;
    case 'TIMESTAMP':
      return dialect.timestampText(expr);
  }
}

/**
 * `<length>:<text>` or `-` for NULL, as three arguments of the one flat concat (see
 * contentHashSql): the length or '', then `:` or `-`, then the text or ''. No piece is built by
 * concatenating smaller ones (that costs a string per piece per row).
 */
function field(text: string, dialect: Dialect): string[] {
  return [`coalesce(CAST(length(${text}) AS ${dialect.typeName('VARCHAR')}), '')`, `CASE WHEN ${text} IS NULL THEN '-' ELSE ':' END`, `coalesce(${text}, '')`];
}

/** Trino's concat takes at most 254 arguments: longer lists are concatenated in groups. */
const CONCAT_MAX_ARGS = 100;

function flatConcat(args: string[]): string {
  if (args.length <= CONCAT_MAX_ARGS) return `concat(${args.join(', ')})`;
  const groups: string[] = [];
  for (let i = 0; i < args.length; i += CONCAT_MAX_ARGS) groups.push(flatConcat(args.slice(i, i + CONCAT_MAX_ARGS)));
  return flatConcat(groups);
}

/**
 * The hash expression over typed columns (`qualifier.` prefixes each column when given). The
 * serialization is ONE concat over every piece rather than a chain of `||`: a chain copies the
 * growing string once per piece (quadratic in the row's width; it was most of the staging time),
 * concat writes it once. Every argument is non-NULL, so both engines' concat give the same string.
 */
export function contentHashSql(columns: CuratedColumn[], dialect: Dialect, qualifier?: string): string {
  const q = qualifier ? `${qualifier}.` : '';
  const args = hashedColumns(columns).flatMap((c, i) => [...(i ? [`','`] : []), ...field(canonicalText(`${q}${ident(c.name)}`, c.type, dialect), dialect)]);
  const serialized = args.length ? flatConcat(args) : `''`;
  return dialect.md5Hex(serialized);
}

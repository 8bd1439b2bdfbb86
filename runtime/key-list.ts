/**
 * The encoding of key lists (the key scan's part files, the transform's missing-keys file): one
 * key per line, each a JSON string. A source key may hold any text (line breaks, NUL, quotes,
 * characters outside the BMP); JSON escapes every control character, so a line never contains a
 * line break, Hive's field delimiter (\x01) or anything else a line reader splits on, and
 * decoding gives back exactly the key. Both engines decode it (DuckDB: JSON.parse here; Athena:
 * CAST(json_parse(line) AS VARCHAR)).
 *
 * Files of the earlier format (`.txt.gz`: the key text itself per line, keys with line breaks
 * impossible) are still read, by their name, so a run begun before the upgrade completes.
 */
export type KeyListFormat = 'json-lines' | 'text-lines';

export const KEY_LIST_SUFFIX: Record<KeyListFormat, string> = { 'json-lines': '.jsonl.gz', 'text-lines': '.txt.gz' };

/** The format of a key-list object, by its name. */
export function keyListFormatOf(objectKey: string): KeyListFormat {
  if (objectKey.endsWith(KEY_LIST_SUFFIX['json-lines'])) return 'json-lines';
  if (objectKey.endsWith(KEY_LIST_SUFFIX['text-lines'])) return 'text-lines';
  throw new Error(`Key list ${objectKey} is neither ${KEY_LIST_SUFFIX['json-lines']} nor ${KEY_LIST_SUFFIX['text-lines']}`);
}

export const encodeKeyList = (keys: readonly string[]): string => keys.map((k) => `${JSON.stringify(k)}\n`).join('');

/** The keys of a list's text; `where` names the object in the error when a line is not a JSON string. */
export function decodeKeyList(text: string, format: KeyListFormat, where: string): string[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (format === 'text-lines') return lines;
  return lines.map((line, i) => {
    let key: unknown;
    try {
      key = JSON.parse(line);
    } catch {
      key = undefined;
    }
    if (typeof key !== 'string') throw new Error(`Key list ${where}, line ${i + 1}: not a JSON string: ${line.slice(0, 100)}`);
    return key;
  });
}

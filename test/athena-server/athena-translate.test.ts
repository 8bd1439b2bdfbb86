import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ATHENA_TRANSLATIONS, athenaStatementType, translateAthenaStatement } from '../../local/athena-translate';
import { addColumnsSql, createKeyScanTableSql, dropTableSql, optimizeSql, renameTableSql, vacuumSql } from '../../containers/transform/src/athena-sql';

describe('translateAthenaStatement (pure)', () => {
  it('passes ordinary statements through verbatim, backticks included (Trino rejects them as Athena does)', () => {
    for (const sql of ['SELECT 1', 'SELECT `a` FROM t', 'INSERT INTO "c"."t" SELECT * FROM x', 'DROP TABLE "db"."t"', "CREATE TABLE t WITH (format = 'PARQUET') AS SELECT 1 AS x"]) {
      assert.deepEqual(translateAthenaStatement(sql), { statements: [sql] });
    }
  });

  it('turns the transform’s DROP and RENAME (backtick Hive DDL) into double-quoted Trino DDL', () => {
    assert.deepEqual(translateAthenaStatement(dropTableSql('curated', 'x___old')), {
      statements: ['DROP TABLE IF EXISTS "curated"."x___old"'],
      translation: 'drop-table',
    });
    assert.deepEqual(translateAthenaStatement(renameTableSql('curated', 'a', 'b')), {
      statements: ['ALTER TABLE "curated"."a" RENAME TO "curated"."b"'],
      translation: 'rename-table',
    });
  });

  it('splits ADD COLUMNS into one ADD COLUMN per column with Hive types mapped', () => {
    const out = translateAthenaStatement(
      addColumnsSql('curated', 't', [
        { name: '_content_hash', type: 'VARCHAR' },
        { name: 'seen', type: 'TIMESTAMP' },
      ]),
    );
    assert.equal(out.translation, 'add-columns');
    assert.deepEqual(out.statements, ['ALTER TABLE "curated"."t" ADD COLUMN "_content_hash" varchar', 'ALTER TABLE "curated"."t" ADD COLUMN "seen" timestamp(6)']);
    const nested = translateAthenaStatement('ALTER TABLE t ADD COLUMNS (p struct<x: double, y: double>, q array<map<string,int>>, d decimal(10,2))');
    assert.deepEqual(nested.statements, [
      'ALTER TABLE t ADD COLUMN "p" row("x" double, "y" double)',
      'ALTER TABLE t ADD COLUMN "q" array(map(varchar, integer))',
      'ALTER TABLE t ADD COLUMN "d" decimal(10,2)',
    ]);
    // An unknown Hive type is not guessed at: the statement reaches Trino as Athena got it.
    assert.equal(translateAthenaStatement('ALTER TABLE t ADD COLUMNS (c nosuchtype)').translation, undefined);
  });

  it('turns the key scan CREATE EXTERNAL TABLE into a Hive TEXTFILE table', () => {
    const out = translateAthenaStatement(createKeyScanTableSql('curated', 'k', 's3://raw/keysets/d/'));
    assert.deepEqual(out, {
      statements: [`CREATE TABLE IF NOT EXISTS "curated"."k" ("key" varchar)\nWITH (format = 'TEXTFILE', external_location = 's3://raw/keysets/d/')`],
      translation: 'create-external-table',
    });
    const fields = translateAthenaStatement("CREATE EXTERNAL TABLE t (a int) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE LOCATION 'x'");
    assert.match(fields.statements[0]!, /textfile_field_separator = ','/);
    // A SerDe form is outside the rule: verbatim.
    const serde = "CREATE EXTERNAL TABLE t (a int) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 'x'";
    assert.deepEqual(translateAthenaStatement(serde), { statements: [serde] });
  });

  it('moves an Iceberg CTAS to the iceberg catalog with Trino property names', () => {
    const sql = `CREATE TABLE "curated"."t"
WITH (
  table_type = 'ICEBERG',
  is_external = false,
  location = 's3://c/t/',
  partitioning = ARRAY['year(ts)'],
  format = 'PARQUET',
  write_compression = 'ZSTD',
  vacuum_max_snapshot_age_seconds = 60
) AS
SELECT CAST(NULL AS varchar) AS "k"
WITH NO DATA`;
    const out = translateAthenaStatement(sql);
    assert.equal(out.translation, 'iceberg-ctas');
    assert.deepEqual(out.sessionProperties, { 'iceberg.compression_codec': 'ZSTD' });
    assert.equal(
      out.statements[0],
      `CREATE TABLE iceberg."curated"."t"\nWITH (location = 's3://c/t/', partitioning = ARRAY['year(ts)'], format = 'PARQUET')\nAS\nSELECT CAST(NULL AS varchar) AS "k"\nWITH NO DATA`,
    );
    assert.match(translateAthenaStatement("CREATE TABLE t WITH (table_type = 'ICEBERG') AS SELECT 1 AS x", { database: 'db' }).statements[0]!, /^CREATE TABLE iceberg\."db"\.t\n/);
    // is_external = true is left for Trino to reject, as Athena rejects it for Iceberg.
    assert.match(translateAthenaStatement("CREATE TABLE t WITH (table_type = 'ICEBERG', is_external = true) AS SELECT 1 AS x").statements[0]!, /is_external = true/);
  });

  it('turns OPTIMIZE and VACUUM into Trino table procedures', () => {
    assert.deepEqual(translateAthenaStatement(optimizeSql('"c"."t"')), { statements: ['ALTER TABLE "c"."t" EXECUTE optimize'], translation: 'optimize' });
    assert.deepEqual(translateAthenaStatement('OPTIMIZE c.`_t` REWRITE DATA USING BIN_PACK WHERE y >= 2020;').statements, ['ALTER TABLE c."_t" EXECUTE optimize WHERE y >= 2020']);
    assert.deepEqual(translateAthenaStatement(vacuumSql('c', 't')), {
      statements: [
        `ALTER TABLE c."t" EXECUTE expire_snapshots(retention_threshold => '5d')`,
        `ALTER TABLE c."t" EXECUTE remove_orphan_files(retention_threshold => '5d')`,
      ],
      translation: 'vacuum',
    });
    // Athena's VACUUM page: double quotes do not work in place of backticks; left for Trino to refuse.
    assert.deepEqual(translateAthenaStatement('VACUUM "c"."t"'), { statements: ['VACUUM "c"."t"'] });
    assert.match(translateAthenaStatement('VACUUM t', { vacuumMaxSnapshotAgeSeconds: 90 }).statements[0]!, /'90s'/);
    // Athena's OPTIMIZE needs its full form; a short one reaches Trino verbatim (and fails there).
    assert.deepEqual(translateAthenaStatement('OPTIMIZE t'), { statements: ['OPTIMIZE t'] });
  });

  it('lists every rule once, each with its Athena and Trino pages', () => {
    assert.equal(new Set(ATHENA_TRANSLATIONS.map((r) => r.id)).size, ATHENA_TRANSLATIONS.length);
    for (const r of ATHENA_TRANSLATIONS) {
      assert.match(r.athenaDoc, /^https:\/\/docs\.aws\.amazon\.com\/athena\//);
      assert.match(r.trinoDoc, /^https:\/\/trino\.io\/docs\//);
    }
    assert.deepEqual(ATHENA_TRANSLATIONS.filter((r) => r.icebergCatalog).map((r) => r.id), ['iceberg-ctas']);
  });

  it('is the table docs/athena-local.md shows, row for row', () => {
    const doc = readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'athena-local.md'), 'utf8');
    const rows = doc.split('\n').filter((l) => /^\| `[a-z-]+` \|/.test(l));
    assert.deepEqual(
      rows.map((l) => /^\| `([a-z-]+)`/.exec(l)![1]),
      ATHENA_TRANSLATIONS.map((r) => r.id),
    );
    ATHENA_TRANSLATIONS.forEach((r, i) => {
      assert.ok(rows[i]!.includes(r.athenaDoc) && rows[i]!.includes(r.trinoDoc), `${r.id}: doc pages differ`);
      assert.ok(rows[i]!.includes(r.icebergCatalog ? '**yes**' : 'no (hive redirection)'), `${r.id}: catalog column differs`);
    });
  });

  it('classifies statements as Athena does', () => {
    assert.equal(athenaStatementType('SELECT 1'), 'DML');
    assert.equal(athenaStatementType('  -- c\nWITH a AS (SELECT 1) SELECT * FROM a'), 'DML');
    assert.equal(athenaStatementType('INSERT INTO t VALUES 1'), 'DML');
    assert.equal(athenaStatementType("CREATE TABLE t WITH (table_type='ICEBERG') AS SELECT 1"), 'DML');
    assert.equal(athenaStatementType('CREATE TABLE t (a int)'), 'DDL');
    assert.equal(athenaStatementType("CREATE EXTERNAL TABLE t (a int) STORED AS TEXTFILE LOCATION 'x'"), 'DDL');
    assert.equal(athenaStatementType('DROP TABLE t'), 'DDL');
    assert.equal(athenaStatementType('SHOW TABLES'), 'UTILITY');
    assert.equal(athenaStatementType('DESCRIBE t'), 'UTILITY');
  });
});

/**
 * `npm run dataset -- add` on real Socrata view metadata (test/fixtures/socrata-views/): each
 * document with a timestamp becomes a definition that the real loader accepts, with every
 * column mapped and the proposals the heuristics promise; documents the pipeline cannot ingest,
 * and unusable fields, fail with one line naming the dataset or field, exit 2.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { socrataSource, COLUMN_TYPES, loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { nameFromTitle, plainText, proposeDataset, readViewDocument, SOCRATA_TYPES, type SocrataView } from '../../runtime/socrata-metadata';
import { runDatasetCommand, type DatasetCommandDeps } from '../../local/dataset-command';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'socrata-views');
const fixture = (file: string) => path.join(FIXTURES, file);
const view = (file: string): SocrataView => readViewDocument(JSON.parse(readFileSync(fixture(file), 'utf8')), file);

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs the command in-process; `fetchJson` fails unless a test gives one. */
async function run(argv: string[], deps: Partial<DatasetCommandDeps> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runDatasetCommand(argv, {
    fetchJson: () => Promise.reject(new Error('no network in this test')),
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    repoRoot: mkdtempSync(path.join(tmpdir(), 'dataset-repo-')),
    ...deps,
  });
  return { code, out, err };
}

/** `add <fixture>` into a fresh directory; returns the loaded definition. */
async function add(file: string, ...flags: string[]): Promise<DatasetConfig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dataset-add-'));
  const r = await run(['add', fixture(file), '--domain', 'data.example.org', '--out-dir', dir, ...flags]);
  assert.equal(r.code, 0, r.err);
  const written = readdirSync(dir);
  assert.equal(written.length, 1, `one file written, got ${written.join(', ')}`);
  // The same loader `cdk synth` and `npm run local` use: validation and name = file name.
  return loadDatasetFile(path.join(dir, written[0]!));
}

const typeOf = (d: DatasetConfig, column: string) => d.columns.find((c) => c.name === column)?.type;

const INGESTIBLE = [
  'nyc-311-service-requests-erm2-nwe9.json',
  'chicago-food-inspections-4ijn-s7e5.json',
  'chicago-crimes-6zsd-86xi.json',
  'seattle-911-incident-response-3k2p-39jp.json',
  'all-column-types-2asz-g9qq.json',
  'live-earthquakes-jatp-jqxg.json',
  'chicago-landmark-districts-zidz-sdfj.json',
];

describe('npm run dataset -- add on real Socrata metadata', () => {
  test('every fixture is either ingestible (listed above) or the no-timestamp case', () => {
    const all = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && !f.endsWith('.rows.json'));
    assert.deepEqual(all.sort(), [...INGESTIBLE, 'winnipeg-outdoor-pools-m7h5-by7s.json'].sort());
  });

  for (const file of INGESTIBLE) {
    test(`${file}: writes a definition the loader accepts, every served column mapped`, async () => {
      const d = await add(file);
      const v = view(file);
      assert.equal(socrataSource(d, 'this test').datasetId, v.id);
      assert.equal(d.$schema, './dataset.schema.json');
      // Every column the fetcher delivers (no system, computed-region or hidden column) is declared, in order.
      const served = v.columns.filter((c) => SOCRATA_TYPES[c.dataTypeName] !== null && !c.fieldName.startsWith(':') && !c.flags?.includes('hidden'));
      assert.deepEqual(d.columns.map((c) => c.name), served.map((c) => c.fieldName));
      for (const c of served) {
        // A Socrata number becomes number, integer or text from its name and statistics (tested below).
        const expected: (string | null | undefined)[] = c.dataTypeName === 'number' ? ['number', 'integer', 'text'] : [SOCRATA_TYPES[c.dataTypeName]];
        assert.ok(expected.includes(typeOf(d, c.fieldName)), `${c.fieldName}: ${typeOf(d, c.fieldName)}`);
      }
      // The key is never a double: ids compared as doubles lose digits and print as 1.2E7.
      assert.notEqual(typeOf(d, d.primaryKey), 'number');
      // No HTML reaches the definition.
      for (const text of [d.description, ...d.columns.map((c) => c.description ?? '')]) assert.doesNotMatch(text, /<\/?[a-z][^>]*>|&[a-z]+;/i);
    });
  }

  test('Chicago crimes: the declared row id is the key, "date" (not "updated_on") the event time, daily schedule', async () => {
    const d = await add('chicago-crimes-6zsd-86xi.json');
    assert.equal(d.name, 'crimes-2001-to-present');
    assert.equal(d.primaryKey, 'id');
    assert.equal(d.eventTimeColumn, 'date');
    assert.equal(typeOf(d, 'location'), 'point');
    assert.equal(typeOf(d, 'arrest'), 'checkbox');
    assert.equal(d.schedule.expression, 'cron(0 6 * * ? *)');
    assert.ok(!d.columns.some((c) => c.name.startsWith(':')), 'computed region columns are left out');
    // Columns without a Socrata description keep their display name as description.
    assert.equal(d.columns.find((c) => c.name === 'case_number')?.description, 'Case Number');
    assert.ok(d.description.startsWith('This dataset reflects reported incidents of crime'));
  });

  test('Seattle 911: descriptions carried over, location kept as JSON, "hourly" becomes rate(1 hour)', async () => {
    const d = await add('seattle-911-incident-response-3k2p-39jp.json');
    const v = view('seattle-911-incident-response-3k2p-39jp.json');
    assert.equal(d.primaryKey, 'cad_cdw_id');
    assert.equal(d.eventTimeColumn, 'event_clearance_date');
    assert.equal(typeOf(d, 'incident_location'), 'json');
    assert.equal(d.schedule.expression, 'rate(1 hour)');
    const described = v.columns.filter((c) => c.description);
    assert.ok(described.length > 5);
    for (const c of described) assert.equal(d.columns.find((x) => x.name === c.fieldName)?.description, c.description!.trim(), c.fieldName);
  });

  test('all column types: money/percent as number, date as fixed_timestamp, location/url/photo/document as json', async () => {
    const d = await add('all-column-types-2asz-g9qq.json');
    assert.deepEqual(
      Object.fromEntries(d.columns.map((c) => [c.name, c.type])),
      {
        plain_text_column: 'text',
        formatted_text_column: 'text',
        number_column: 'number',
        money_column: 'number',
        percent_column: 'number',
        date_time_column: 'floating_timestamp',
        date_time_with_timezone_column: 'fixed_timestamp',
        location_column: 'json',
        website_url_column: 'json',
        email_column: 'text',
        checkbox_column: 'checkbox',
        flag_column: 'text',
        star_column: 'number',
        phone_column: 'text',
        multiple_choice: 'text',
        photo_column: 'json',
        document: 'json',
      },
    );
    assert.equal(d.eventTimeColumn, 'date_time_column', 'a floating timestamp is preferred over a fixed one');
    // One row: nothing repeats, so no accepted_values guess.
    assert.deepEqual(d.dataTests.map((t) => t.kind), ['not_null']);
  });

  test('live earthquakes: accepted_values only for text columns whose complete value list repeats', async () => {
    const d = await add('live-earthquakes-jatp-jqxg.json');
    assert.equal(d.primaryKey, 'id');
    assert.equal(d.eventTimeColumn, 'time');
    const accepted = d.dataTests.filter((t) => t.kind === 'accepted_values');
    assert.deepEqual(accepted.map((t) => t.column), ['magtype', 'net', 'type']);
    const v = view('live-earthquakes-jatp-jqxg.json');
    const magtype = v.columns.find((c) => c.fieldName === 'magtype')!.cachedContents!.top!.map((t) => t.item);
    assert.deepEqual(accepted[0]!.kind === 'accepted_values' && accepted[0]!.values, magtype);
    assert.ok(d.dataTests.every((t) => t.severity === 'warn'));
  });

  test('landmark districts: a fixed timestamp can be the event time; the key comes from unique statistics', async () => {
    const d = await add('chicago-landmark-districts-zidz-sdfj.json');
    assert.equal(d.eventTimeColumn, 'designation_date');
    assert.equal(typeOf(d, 'designation_date'), 'fixed_timestamp');
    assert.equal(d.primaryKey, 'district_name');
  });

  test('NYC 311: created_date (not closed_date) is the event time, the name is derived and explained, HTML is stripped', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-add-'));
    const r = await run(['add', fixture('nyc-311-service-requests-erm2-nwe9.json'), '--domain', 'data.cityofnewyork.us', '--out-dir', dir]);
    assert.equal(r.code, 0, r.err);
    const d = loadDatasetFile(path.join(dir, 'cityofnewyork-311-service-requests.json'));
    assert.equal(d.eventTimeColumn, 'created_date');
    assert.equal(d.primaryKey, 'unique_key');
    assert.equal(typeOf(d, 'unique_key'), 'text');
    assert.equal(typeOf(d, 'incident_zip'), 'text');
    assert.equal(d.description, 'NOTE: The 311 dataset is currently showing incorrect values in the "Agency Name" column. Please use the "Agency" column in the interim while this is being resolved.\n\nAll 311 Service Requests from 2010 to present. This information is automatically updated daily.');
    // Each choice is one line that says why.
    assert.match(r.out, /\n {2}name: cityofnewyork-311-service-requests \(from the title in kebab-case, "cityofnewyork" \(the portal's name\) in front because a table name cannot start with a digit, cut at a word .*--name\)\n/);
    assert.match(r.out, /\n {2}event time: created_date \(a creation or occurrence time\); other timestamps: closed_date \(a closing or due time\), due_date \(a closing or due time\), resolution_action_updated_date \(an update or load time\); choose another with --event-time\n/);
    assert.match(r.out, /\n {2}description: HTML markup removed/);
    assert.equal(d.schedule.expression, 'cron(0 6 * * ? *)');
  });

  test('Chicago food inspections: inspection_date, an integer key, zip codes as text, no accepted_values for free text', async () => {
    const d = await add('chicago-food-inspections-4ijn-s7e5.json');
    assert.equal(d.name, 'food-inspections');
    assert.equal(d.eventTimeColumn, 'inspection_date');
    assert.equal(d.primaryKey, 'inspection_id');
    assert.equal(typeOf(d, 'inspection_id'), 'integer');
    assert.equal(typeOf(d, 'license_'), 'integer');
    assert.equal(typeOf(d, 'zip'), 'text');
    assert.equal(typeOf(d, 'latitude'), 'number');
    // dba_name lists 2 of ~49,000 names and its own smallest/largest values are not among them.
    const accepted = d.dataTests.filter((t) => t.kind === 'accepted_values');
    assert.deepEqual(accepted.map((t) => t.column), ['risk', 'state', 'results']);
    assert.deepEqual(accepted[0]!.kind === 'accepted_values' && accepted[0]!.values, ['Risk 2 (Medium)', 'Risk 3 (Low)', 'Risk 1 (High)', 'All']);
    assert.equal(d.schedule.expression, 'cron(0 6 ? * MON *)', '"Data is updated weekly"');
  });

  test('Winnipeg pools (no timestamp column): refused in one line naming the dataset, exit 2, nothing written', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-add-'));
    const r = await run(['add', fixture('winnipeg-outdoor-pools-m7h5-by7s.json'), '--domain', 'data.winnipeg.ca', '--out-dir', dir]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^dataset: dataset m7h5-by7s has no timestamp column .*partitioned by event time.*\n$/);
    assert.equal(r.err.split('\n').length, 2, 'one line');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a proposal the schema refuses (here a bad --name) is reported with the field, and nothing is written', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-add-'));
    const r = await run(['add', fixture('chicago-crimes-6zsd-86xi.json'), '--domain', 'data.cityofchicago.org', '--out-dir', dir, '--name', 'Chicago_Crimes']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^dataset: Invalid dataset definition proposed for data\.cityofchicago\.org\/6zsd-86xi: name: must be kebab-case, 3-42 characters\n$/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('--primary-key and --event-time override the proposal, and are checked', async () => {
    const d = await add('chicago-crimes-6zsd-86xi.json', '--primary-key', 'case_number', '--event-time', 'updated_on', '--name', 'chicago-crimes');
    assert.equal(d.name, 'chicago-crimes');
    assert.equal(d.primaryKey, 'case_number');
    assert.equal(d.eventTimeColumn, 'updated_on');
    const r = await run(['add', fixture('chicago-crimes-6zsd-86xi.json'), '--domain', 'x.example.org', '--event-time', 'block', '--dry-run']);
    assert.equal(r.code, 2);
    assert.equal(r.err, 'dataset: --event-time block: it is a text column; it must be floating_timestamp or fixed_timestamp\n');
  });
});

describe('type mapping and field names', () => {
  test('every Socrata type named in the issue maps onto a column type', () => {
    const types = ['text', 'number', 'double', 'money', 'percent', 'calendar_date', 'floating_timestamp', 'fixed_timestamp', 'checkbox', 'point', 'location',
      'multipoint', 'line', 'multiline', 'polygon', 'multipolygon', 'url', 'phone', 'email', 'photo', 'document', 'blob', 'html', 'date'];
    for (const t of types) assert.ok((COLUMN_TYPES as readonly string[]).includes(SOCRATA_TYPES[t] ?? ''), `${t} has no column type`);
    for (const t of ['multipoint', 'line', 'multiline', 'polygon', 'multipolygon']) assert.equal(SOCRATA_TYPES[t], 'geometry');
  });

  const synthetic = (columns: { fieldName: string; dataTypeName: string }[]): SocrataView => ({
    id: 'abcd-1234',
    name: 'Synthetic',
    columns: [{ fieldName: 'id', dataTypeName: 'text' }, { fieldName: 'ts', dataTypeName: 'calendar_date' }, ...columns],
  });

  test('a field that cannot be a column name is refused by name, and --exclude leaves it out', () => {
    const v = synthetic([{ fieldName: 'select', dataTypeName: 'text' }, { fieldName: 'Mixed Case', dataTypeName: 'number' }, { fieldName: '_ingested_at', dataTypeName: 'text' }]);
    assert.throws(() => proposeDataset(v, { domain: 'data.example.org' }), (err: Error) => {
      assert.match(err.message, /"select" is a reserved word in Athena \(Trino\) and DuckDB/);
      assert.match(err.message, /"Mixed Case" must be a lower-case SQL identifier/);
      assert.match(err.message, /"_ingested_at" is an ingestion metadata column/);
      assert.match(err.message, /--exclude/);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
    const { definition } = proposeDataset(v, { domain: 'data.example.org', exclude: ['select', 'Mixed Case', '_ingested_at'] });
    assert.deepEqual((definition.columns as { name: string }[]).map((c) => c.name), ['id', 'ts']);
  });

  test('an unknown Socrata type is refused by field and type', () => {
    assert.throws(() => proposeDataset(synthetic([{ fieldName: 'rating', dataTypeName: 'stars' }]), { domain: 'data.example.org' }), /no column type for "rating" \(stars\)/);
  });

  test('a point whose default coordinate names are declared gets <name>_lon/<name>_lat', async () => {
    const v = synthetic([{ fieldName: 'point', dataTypeName: 'point' }, { fieldName: 'latitude', dataTypeName: 'number' }, { fieldName: 'longitude', dataTypeName: 'number' }]);
    const { definition } = proposeDataset(v, { domain: 'data.example.org' });
    const point = (definition.columns as { name: string; coordinates?: unknown }[]).find((c) => c.name === 'point');
    assert.deepEqual(point?.coordinates, { longitude: 'point_lon', latitude: 'point_lat' });
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-point-'));
    writeFileSync(path.join(dir, 'view.json'), JSON.stringify(v));
    const r = await run(['add', path.join(dir, 'view.json'), '--domain', 'data.example.org', '--out-dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(loadDatasetFile(path.join(dir, 'synthetic.json')).columns.find((c) => c.name === 'point')?.coordinates, { longitude: 'point_lon', latitude: 'point_lat' });
  });

  const keyOf = (v: SocrataView) => proposeDataset(v, { domain: 'data.example.org' }).definition.primaryKey;
  const eventOf = (v: SocrataView) => proposeDataset(v, { domain: 'data.example.org' }).definition.eventTimeColumn;
  const stats = (nonNull: number, cardinality: number, nulls = 0) => ({ cachedContents: { non_null: String(nonNull), cardinality: String(cardinality), null: String(nulls) } });

  test('primary key evidence: a declared row identifier beats names; unique statistics beat names; statistics veto a name', () => {
    const columns = [
      { id: 1, fieldName: 'case_id', dataTypeName: 'text' },
      { id: 2, fieldName: 'permit', dataTypeName: 'text' },
      { id: 3, fieldName: 'ts', dataTypeName: 'calendar_date' },
    ];
    assert.equal(keyOf({ id: 'abcd-1234', name: 'k', rowIdentifierColumnId: 2, columns }), 'permit');
    assert.equal(keyOf({ id: 'abcd-1234', name: 'k', metadata: { rowIdentifier: '2' }, columns }), 'permit');
    assert.equal(keyOf({ id: 'abcd-1234', name: 'k', columns }), 'case_id');
    const withStats = [
      { fieldName: 'case_id', dataTypeName: 'text', ...stats(100, 60) },
      { fieldName: 'permit', dataTypeName: 'text', ...stats(100, 100) },
      { fieldName: 'ts', dataTypeName: 'calendar_date' },
    ];
    assert.equal(keyOf({ id: 'abcd-1234', name: 'k', columns: withStats }), 'permit');
    const vetoed = [{ fieldName: 'case_id', dataTypeName: 'text', ...stats(90, 90, 10) }, { fieldName: 'ts', dataTypeName: 'calendar_date' }];
    assert.throws(() => keyOf({ id: 'abcd-1234', name: 'k', columns: vetoed }), /no column looks like a row identifier/);
  });

  test('event time: an event-like name beats an earlier bookkeeping timestamp; floating beats fixed', () => {
    const ts = (fieldName: string, dataTypeName = 'calendar_date') => ({ fieldName, dataTypeName });
    const id = { fieldName: 'id', dataTypeName: 'text' };
    assert.equal(eventOf({ id: 'abcd-1234', name: 'e', columns: [id, ts('data_as_of'), ts('last_updated'), ts('closed'), ts('incident_date')] }), 'incident_date');
    assert.equal(eventOf({ id: 'abcd-1234', name: 'e', columns: [id, ts('data_loaded_at'), ts('closed')] }), 'closed');
    assert.equal(eventOf({ id: 'abcd-1234', name: 'e', columns: [id, ts('received_date', 'date'), ts('reported_date')] }), 'reported_date');
  });

  test('event time: creation/occurrence over closing/due over update; a mostly empty column loses; the null share is stated', () => {
    const ts = (fieldName: string, nulls?: number) => ({ fieldName, dataTypeName: 'calendar_date', ...(nulls === undefined ? {} : { cachedContents: { null: nulls, non_null: 100 - nulls } }) });
    const id = { fieldName: 'id', dataTypeName: 'text' };
    const v = (...columns: object[]): SocrataView => ({ id: 'abcd-1234', name: 'e', columns: [id, ...columns] as SocrataView['columns'] });
    assert.equal(eventOf(v(ts('closed_date'), ts('due_date'), ts('last_modified'), ts('created_date'))), 'created_date');
    assert.equal(eventOf(v(ts('resolution_updated_date'), ts('closed_date'))), 'closed_date');
    assert.equal(eventOf(v(ts('due_date'), ts('report_day'))), 'report_day', 'a neutral date beats a due date');
    assert.equal(eventOf(v(ts('opened_at', 80), ts('closed_at', 5))), 'closed_at', 'an 80% empty column cannot partition the table');
    assert.equal(eventOf(v(ts('incident_date', 30), ts('reported_date', 2))), 'reported_date', 'equal rank: the smaller null share');
    const { notes } = proposeDataset(v(ts('incident_date', 30), ts('reported_date', 2)), { domain: 'data.example.org' });
    assert.ok(notes.includes('event time: reported_date (a creation or occurrence time, 2.0% empty); other timestamps: incident_date (a creation or occurrence time, 30% empty); choose another with --event-time'), notes.join('\n'));
  });

  test('number columns: identifiers integer or text, zip codes text, whole-valued statistics integer, else double; each explained', () => {
    const n = (fieldName: string, values?: string[]) => ({
      fieldName,
      dataTypeName: 'number',
      ...(values ? { cachedContents: { smallest: values[0], largest: values.at(-1), top: values.map((item) => ({ item, count: '1' })) } } : {}),
    });
    const view: SocrataView = {
      id: 'abcd-1234',
      name: 'numbers',
      columns: [
        n('permit_id', ['10', '20', '30']),
        n('case_number', ['10', '20.5']),
        n('record_no'),
        n('zip_code', ['60601', '60602', '60603']),
        n('floors', ['1', '2', '7']),
        n('stories', ['1', '2']),
        n('amount', ['1', '2.25', '9']),
        n('latitude', ['41', '42', '43']),
        n('total'),
        { fieldName: 'ts', dataTypeName: 'calendar_date' },
      ],
    };
    const { definition, notes } = proposeDataset(view, { domain: 'data.example.org', primaryKey: 'permit_id' });
    const types = Object.fromEntries((definition.columns as { name: string; type: string }[]).map((c) => [c.name, c.type]));
    assert.deepEqual(types, {
      permit_id: 'integer', case_number: 'text', record_no: 'text', zip_code: 'text', floors: 'integer', stories: 'number', amount: 'number', latitude: 'number', total: 'number', ts: 'floating_timestamp',
    });
    for (const column of Object.keys(types).filter((c) => c !== 'ts')) {
      assert.equal(notes.filter((line) => line.startsWith(`type ${column}: `)).length, 1, `one line for ${column}`);
    }
    assert.ok(notes.includes('type floors: integer (only whole numbers in the portal\'s statistics: 3 distinct values, 1 to 7; a fraction later would be a counted cast failure, kept in raw)'), notes.join('\n'));
    assert.ok(notes.every((line) => !line.includes('\n')), 'every note is one line');
  });

  test('accepted_values only for a list the statistics show complete', () => {
    const text = (fieldName: string, cachedContents: SocrataView['columns'][number]['cachedContents']) => ({ fieldName, dataTypeName: 'text', cachedContents });
    const top = (...items: [string, number][]) => items.map(([item, count]) => ({ item, count }));
    const view: SocrataView = {
      id: 'abcd-1234',
      name: 'categories',
      columns: [
        { fieldName: 'id', dataTypeName: 'text' },
        { fieldName: 'ts', dataTypeName: 'calendar_date' },
        // Two top names of thousands: the smallest/largest values are elsewhere.
        text('business', { non_null: 49489, smallest: "'C' Catering", largest: 'Zyggyz Grill', top: top(['SAFAH', 20], ['WOLCOTTS', 19]) }),
        // The counts add up to every non-null row.
        text('status', { non_null: 30, top: top(['Open', 20], ['Closed', 10]) }),
        // Cardinality says there are more values than listed.
        text('kind', { non_null: 100, cardinality: 4, top: top(['a', 50], ['b', 40], ['c', 9]) }),
        // Short list holding both ends, no counts or cardinality: complete.
        text('risk', { non_null: 100, smallest: 'High', largest: 'Low', top: top(['Low', 0], ['High', 0], ['Medium', 0]).map((t) => ({ item: t.item })) }),
        // Short list holding only one end.
        text('city', { non_null: 100, smallest: 'Alsip', largest: 'Worth', top: top(['Chicago', 90], ['Worth', 5]) }),
      ],
    };
    const { definition, notes } = proposeDataset(view, { domain: 'data.example.org' });
    const accepted = (definition.dataTests as { kind: string; column: string }[]).filter((t) => t.kind === 'accepted_values').map((t) => t.column);
    assert.deepEqual(accepted, ['status', 'risk']);
    assert.ok(notes.includes("test accepted_values status (the listed values' counts add up to all 30 non-null rows)"), notes.join('\n'));
    assert.ok(notes.includes('no accepted_values for business, kind, city: the statistics do not show a complete list of at most 10 values'), notes.join('\n'));
  });

  test('names: kebab-case title cut at a word, the portal in front of a leading digit, HTML-free descriptions', () => {
    assert.deepEqual(nameFromTitle('311 Service Requests from 2010 to Present', 'erm2-nwe9', 'data.cityofnewyork.us').name, 'cityofnewyork-311-service-requests');
    assert.deepEqual(nameFromTitle('Crimes - 2001 to present', '6zsd-86xi', 'data.cityofchicago.org').name, 'crimes-2001-to-present');
    assert.deepEqual(nameFromTitle('2020 Census', 'abcd-1234').name, 'socrata-abcd-1234');
    assert.match(nameFromTitle('2020 Census', 'abcd-1234').rule, /no valid name/);
    assert.equal(plainText('<b>NOTE:</b> A &amp; B&#39;s <i>data</i><br>next&nbsp;line\n<p>\nPara</p>'), "NOTE: A & B's data\nnext line\n\nPara");
    assert.equal(plainText('  Date SR  was created\n'), 'Date SR  was created', 'text without markup is only trimmed');
  });

  test('no identifier-like column: refused, pointing at --primary-key', () => {
    const v: SocrataView = { id: 'abcd-1234', name: 'No key', columns: [{ fieldName: 'label', dataTypeName: 'text' }, { fieldName: 'ts', dataTypeName: 'calendar_date' }] };
    assert.throws(() => proposeDataset(v, { domain: 'data.example.org' }), /no column looks like a row identifier.*--primary-key <field>/);
  });
});

/**
 * The compact storage mode of the local Socrata server (rows in a file, generated in the
 * background) answers every query shape the pipeline and tests send with exactly the bytes the
 * in-memory server sends, before and after publisher mutations, and deletes its file on close.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';

const ROWS = 12_000;

async function body(server: SocrataServer, params: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.resourceUrl}?${new URLSearchParams(params)}`);
  return { status: res.status, text: await res.text() };
}

const keysetWhere = (row: { ':updated_at': string; ':id': string }): string =>
  `:updated_at > '${row[':updated_at']}' OR (:updated_at = '${row[':updated_at']}' AND :id > '${row[':id']}')`;

/** Every page of a keyset read, as the fetcher asks for them. */
async function keysetPages(server: SocrataServer, limit: number): Promise<string[]> {
  const pages: string[] = [];
  let after: { ':updated_at': string; ':id': string } | undefined;
  for (;;) {
    const params: Record<string, string> = { $select: ':*,*', $order: ':updated_at,:id', $limit: String(limit) };
    if (after) params.$where = keysetWhere(after);
    const { status, text } = await body(server, params);
    assert.equal(status, 200, text);
    pages.push(text);
    const rows = JSON.parse(text) as { ':updated_at': string; ':id': string }[];
    if (!rows.length) return pages;
    after = rows.at(-1)!;
  }
}

describe('compact storage answers like the in-memory server', { timeout: 120_000 }, () => {
  let dir: string;
  let memory: SocrataServer;
  let compact: SocrataServer;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'socrata-compact-'));
    memory = await startSocrataServer({ rows: ROWS, seed: 5, growth: [700] });
    compact = await startSocrataServer({ rows: ROWS, seed: 5, growth: [700], storageDir: dir });
  });
  after(async () => {
    await memory?.close();
    await compact?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('keyset pages, served while the rows are still being generated, are byte-identical', async () => {
    // Asked at once: the compact server has generated little yet, so the first pages wait for rows.
    const [a, b] = await Promise.all([keysetPages(compact, 1_500), keysetPages(memory, 1_500)]);
    assert.equal(a.length, Math.ceil((ROWS + 700) / 1_500) + 1, 'full pages, then the empty end');
    assert.deepEqual(a, b);
    const all = a.flatMap((p) => JSON.parse(p) as Record<string, unknown>[]);
    assert.equal(all.length, ROWS + 700);
    assert.equal(all.filter((r) => r[':updated_at'] === all.at(-1)![':updated_at']).length, 700, 'the growth rows share one new :updated_at');
  });

  test('a page larger than what is generated so far waits for its rows', async () => {
    const big = await startSocrataServer({ rows: 40_000, seed: 6, storageDir: dir });
    try {
      assert.ok(big.rows.length < 40_000, `still generating (${big.rows.length} rows so far)`);
      const page = await body(big, { $select: ':*,*', $order: ':updated_at,:id', $limit: '40000' });
      assert.equal((JSON.parse(page.text) as unknown[]).length, 40_000, 'not cut short at the rows generated when it was asked');
      const count = await body(big, { $select: 'count(*) AS n' });
      assert.equal(count.text, '[{"n":"40000"}]');
    } finally {
      await big.close();
    }
  });

  const shapes: [string, Record<string, string>][] = [
    ['count of everything', { $select: 'count(*) AS n' }],
    ['count after a keyset position', { $select: 'count(*) AS n', $where: ":updated_at > '2024-01-05T00:00:00.000Z'" }],
    ['key scan page', { $select: 'id, :id', $order: ':id', $limit: '5000', $where: ":id > 'row-4'" }],
    ['rows by key', { $select: ':*,*', $order: ':updated_at,:id', $limit: '50', $where: "id in ('180000010', '180000020', '180001000')" }],
    ['plain rows with offset', { $select: '*', $order: ':id', $limit: '7', $offset: '11' }],
    ['a filter on a column kept only in the file', { $select: ':*,*', $where: "battalion = 'B03' AND suppression_units > 2", $order: ':updated_at,:id', $limit: '40' }],
    ['an order on a column kept only in the file', { $select: 'id, alarm_dttm', $order: 'alarm_dttm DESC, id', $limit: '9' }],
    ['default order and limit', {}],
    ['a bad column', { $select: ':*,*', $where: "nope = 'x'" }],
  ];

  test('every other query shape gives the same status and bytes', async () => {
    for (const [name, params] of shapes) {
      const [a, b] = await Promise.all([body(compact, params), body(memory, params)]);
      assert.equal(a.status, b.status, name);
      assert.equal(a.text, b.text, name);
    }
  });

  test('after additions, deletes by key and a full replace, the answers still agree', async () => {
    // Mutations with no random pick: both servers change the same rows (a random pick is by
    // position, and compact rows are held in keyset order, not generation order; so are new ids of a replace).
    for (const m of [{ add: 30 }, { deleteKeys: ['180000010', '180000020'] }, { addKeyless: 2, addOversize: 1 }, { replace: {} }]) {
      assert.deepEqual(compact.mutate(m), memory.mutate(m), JSON.stringify(m));
      for (const [name, params] of shapes) {
        const [a, b] = await Promise.all([body(compact, params), body(memory, params)]);
        assert.equal(a.text, b.text, `${name} after ${JSON.stringify(m)}`);
      }
      assert.deepEqual(await keysetPages(compact, 4_000), await keysetPages(memory, 4_000), `keyset pages after ${JSON.stringify(m)}`);
    }
    // Compact rows keep only what queries compare in memory.
    assert.deepEqual(Object.keys(compact.rows[0]!).sort(), [':created_at', ':id', ':updated_at', 'id']);
  });

  test('random updates and deletes change exactly the rows they report', async () => {
    const before = (await keysetPages(compact, 5_000)).flatMap((p) => JSON.parse(p) as Record<string, string>[]);
    const r = compact.mutate({ update: 40, delete: 25 });
    const afterRows = (await keysetPages(compact, 5_000)).flatMap((p) => JSON.parse(p) as Record<string, string>[]);
    assert.equal(afterRows.length, before.length - 25);
    const byId = new Map(afterRows.map((row) => [row[':id']!, row]));
    const old = new Map(before.map((row) => [row[':id']!, row]));
    assert.equal(r.updated.length, 40);
    for (const id of r.updated) {
      const row = byId.get(id);
      if (!row) continue; // updated, then picked for deletion
      assert.equal(row[':updated_at'], r.updatedAt);
      assert.notEqual(row.estimated_property_loss, old.get(id)!.estimated_property_loss);
    }
    const keys = new Set(afterRows.map((row) => row.id));
    for (const k of r.deleted) assert.ok(!keys.has(k), `${k} deleted`);
    // Rows after the change are served in keyset order: the updated ones last.
    assert.deepEqual(afterRows.slice(-afterRows.filter((x) => x[':updated_at'] === r.updatedAt).length).map((x) => x[':updated_at']), afterRows.filter((x) => x[':updated_at'] === r.updatedAt).map(() => r.updatedAt));
  });

  test('close deletes the row file', async () => {
    assert.equal(readdirSync(dir).length, 1);
    await compact.close();
    assert.deepEqual(readdirSync(dir), []);
    assert.ok(existsSync(dir));
  });
});

/**
 * The lint rules that keep the house's walls (eslint.config.js, CONTRIBUTING.md "The map of the
 * house") reject what they are there to reject: an import cycle, type-only or not, and an import
 * against the allowed direction between top-level folders; and let the allowed imports through.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ESLint } from 'eslint';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
const eslint = new ESLint({ cwd: REPO_ROOT });

/** The rule ids of what ESLint reports for `code` as if it were the file `file` (relative to the repository). */
async function ruleIds(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO_ROOT, file) });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

describe('house walls: allowed direction between top-level folders', () => {
  const cases: [file: string, from: string, allowed: boolean][] = [
    ['runtime/zz-wall.ts', '../lib/constructs/raw-table', false],
    ['runtime/zz-wall.ts', '../local/pipeline', false],
    ['lambdas/fetcher/zz-wall.ts', '../../containers/transform/src/columns', false],
    ['lambdas/fetcher/zz-wall.ts', '../../runtime/run-protocol', true],
    ['containers/transform/src/zz-wall.ts', '../../../lambdas/fetcher/handler', false],
    ['lib/constructs/zz-wall.ts', '../../local/pipeline', false],
    ['lib/constructs/zz-wall.ts', '../../runtime/run-protocol', true],
    ['bin/zz-wall.ts', '../local/pipeline', false],
    ['bin/zz-wall.ts', '../lib/constructs/raw-table', true],
    ['local/zz-wall.ts', '../test/cdk/app-fixture', false],
    ['local/zz-wall.ts', '../lambdas/fetcher/handler', true],
    ['bench/zz-wall.ts', '../test/cdk/app-fixture', false],
    ['bench/zz-wall.ts', '../local/pipeline', true],
  ];
  for (const [file, from, allowed] of cases) {
    it(`${path.dirname(file)} ${allowed ? 'may' : 'may not'} import ${from}`, async () => {
      const ids = await ruleIds(file, `import type * as M from '${from}';\nexport type T = typeof M;\n`);
      assert.deepEqual(ids, allowed ? [] : ['import-x/no-restricted-paths']);
    });
  }
});

describe('house walls: import cycles', () => {
  // Real files (the cycle rules read the modules an import leads to from disk), under test/,
  // which may import anything, so only the cycle rules can object.
  const dir = mkdtempSync(path.join(REPO_ROOT, 'test', 'house', 'zz-cycle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, code: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, code);
    return file;
  };
  const lint = async (file: string): Promise<string[]> => (await eslint.lintFiles([file]))[0]!.messages.map((m) => m.ruleId ?? m.message);

  it('a cycle closed by a type-only import is reported on both modules', async () => {
    const a = write('type-a.ts', "import { b } from './type-b';\nexport interface Shape { n: number }\nexport const a = (): number => b({ n: 1 });\n");
    const b = write('type-b.ts', "import type { Shape } from './type-a';\nexport const b = (s: Shape): number => s.n;\n");
    assert.deepEqual(await lint(a), ['house/no-type-import-cycle']);
    assert.deepEqual(await lint(b), ['house/no-type-import-cycle']);
  });

  it('a cycle of value imports is reported (by import-x, once)', async () => {
    const a = write('value-a.ts', "import { b } from './value-b';\nexport const a = (): number => b() + 1;\n");
    write('value-b.ts', "import { a } from './value-a';\nexport const b = (): number => (Math.random() > 2 ? a() : 0);\n");
    assert.deepEqual(await lint(a), ['import-x/no-cycle']);
  });

  it('the shared type in a module of its own is no cycle', async () => {
    write('shape.ts', 'export interface Shape { n: number }\n');
    const a = write('fixed-a.ts', "import type { Shape } from './shape';\nimport { b } from './fixed-b';\nexport const a = (s: Shape): number => b(s);\n");
    const b = write('fixed-b.ts', "import type { Shape } from './shape';\nexport const b = (s: Shape): number => s.n;\n");
    assert.deepEqual(await lint(a), []);
    assert.deepEqual(await lint(b), []);
  });
});

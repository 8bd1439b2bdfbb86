/**
 * Every error class in the product code derives from PipelineError (runtime/pipeline-error.ts):
 * the commands map errors by its category and exit code, so an error class outside it would end
 * a command as a crash (exit 1, no hint) whatever it meant. Read from the source (each
 * `class X extends Y`, Y followed through the imports), not by loading the modules: loading a
 * command module runs the command.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
/** The product: everything but test/ (CONTRIBUTING.md, "The map of the house"). */
const PRODUCT_DIRS = ['bin', 'lib', 'runtime', 'lambdas', 'containers', 'local', 'bench'];
/** The base, and the module of its families (never thrown by a Lambda function as themselves). */
const BASE = { file: path.join(REPO_ROOT, 'runtime', 'pipeline-error.ts'), name: 'PipelineError' };
/** Bundled into the Lambda functions: the functions themselves, and the contracts they import. */
const BUNDLED_DIRS = ['lambdas', 'runtime'];
/** JavaScript's own errors: a class reaching one of them is an error class. */
const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError']);

interface ClassDecl {
  name: string;
  /** The `extends` expression as written, if any. */
  base: string | undefined;
  line: number;
  /** The name it gives itself as a string literal (`override name = 'X'`, or `this.name = 'X'` in its constructor). */
  literalName: string | undefined;
}

function literalNameOf(node: ts.ClassLikeDeclaration): string | undefined {
  for (const member of node.members) {
    if (ts.isPropertyDeclaration(member) && member.name.getText() === 'name' && member.initializer && ts.isStringLiteral(member.initializer)) return member.initializer.text;
    if (ts.isConstructorDeclaration(member)) {
      for (const statement of member.body?.statements ?? []) {
        const e = ts.isExpressionStatement(statement) ? statement.expression : undefined;
        if (e && ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken && e.left.getText() === 'this.name' && ts.isStringLiteral(e.right)) return e.right.text;
      }
    }
  }
  return undefined;
}

interface Module {
  classes: ClassDecl[];
  /** Local name → where it comes from (`import { imported as local } from 'specifier'`). */
  imports: Map<string, { specifier: string; imported: string }>;
  /** Exported name → local name (`export { local as exported }`) or another module (`export { x } from '...'`). */
  exports: Map<string, { local: string } | { specifier: string; imported: string }>;
}

function productFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return ['node_modules', 'cdk.out', 'dist'].includes(e.name) ? [] : productFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function parseModule(file: string): Module {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const mod: Module = { classes: [], imports: new Map(), exports: new Map() };
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      const heritage = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
      const name = node.name?.text ?? (ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name) ? node.parent.name.text : '(anonymous class)');
      mod.classes.push({ name, base: heritage?.getText(source), line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, literalName: literalNameOf(node) });
    }
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text;
      const clause = node.importClause;
      if (clause?.name) mod.imports.set(clause.name.text, { specifier, imported: 'default' });
      if (clause?.namedBindings && ts.isNamedImports(clause.namedBindings)) {
        for (const el of clause.namedBindings.elements) mod.imports.set(el.name.text, { specifier, imported: (el.propertyName ?? el.name).text });
      }
    }
    if (ts.isExportDeclaration(node) && node.exportClause && ts.isNamedExports(node.exportClause)) {
      const specifier = node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) ? node.moduleSpecifier.text : undefined;
      for (const el of node.exportClause.elements) {
        const local = (el.propertyName ?? el.name).text;
        mod.exports.set(el.name.text, specifier ? { specifier, imported: local } : { local });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return mod;
}

const modules = new Map<string, Module>();
function moduleOf(file: string): Module {
  let mod = modules.get(file);
  if (!mod) modules.set(file, (mod = parseModule(file)));
  return mod;
}

/** The .ts file a relative import names (tsconfig "bundler" resolution: no extension, or a directory's index). */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  return [`${base}.ts`, base.replace(/\.js$/, '.ts'), path.join(base, 'index.ts')].find((p) => p.endsWith('.ts') && existsSync(p));
}

type Resolved = { kind: 'class'; file: string; decl: ClassDecl } | { kind: 'builtin'; name: string } | { kind: 'external'; name: string };

/** What the name `name`, as used in `file`, is: one of our classes, a builtin error, or something we cannot follow. */
function resolveName(file: string, name: string, seen = new Set<string>()): Resolved {
  const key = `${file}#${name}`;
  if (seen.has(key)) return { kind: 'external', name };
  seen.add(key);
  const mod = moduleOf(file);
  const decl = mod.classes.find((c) => c.name === name);
  if (decl) return { kind: 'class', file, decl };
  const imported = mod.imports.get(name);
  if (imported) {
    const target = resolveSpecifier(file, imported.specifier);
    return target ? resolveExport(target, imported.imported, seen) : { kind: 'external', name: `${imported.specifier}#${imported.imported}` };
  }
  return BUILTIN_ERRORS.has(name) ? { kind: 'builtin', name } : { kind: 'external', name };
}

function resolveExport(file: string, exported: string, seen: Set<string>): Resolved {
  const re = moduleOf(file).exports.get(exported);
  if (!re) return resolveName(file, exported, seen);
  if ('local' in re) return resolveName(file, re.local, seen);
  const target = resolveSpecifier(file, re.specifier);
  return target ? resolveExport(target, re.imported, seen) : { kind: 'external', name: `${re.specifier}#${re.imported}` };
}

/** The chain of bases of a class, ending in a builtin error, something outside the repository, or nothing. */
function chainOf(file: string, decl: ClassDecl): Resolved[] {
  const chain: Resolved[] = [];
  let current: { file: string; decl: ClassDecl } = { file, decl };
  while (current.decl.base !== undefined && chain.length < 20) {
    // `extends Foo<T>` and `extends ns.Foo` keep their last identifier.
    const baseName = current.decl.base.replace(/<.*$/s, '').split('.').at(-1)!.trim();
    const next = resolveName(current.file, baseName);
    chain.push(next);
    if (next.kind !== 'class') break;
    current = next;
  }
  return chain;
}

const isBase = (r: Resolved): boolean => r.kind === 'class' && r.file === BASE.file && r.decl.name === BASE.name;
/** A class whose chain reaches a builtin error, or a library's class named like one. */
const isErrorChain = (chain: Resolved[]): boolean => {
  const last = chain.at(-1);
  return !!last && (last.kind === 'builtin' || (last.kind === 'external' && /(Error|Exception)$/.test(last.name)));
};

/**
 * Every error class in `dirs` that does not derive from PipelineError, as `file:line class X extends Y`;
 * every one in code bundled into a Lambda function whose name is not a literal; how many there are.
 */
function errorClasses(root = REPO_ROOT, dirs = PRODUCT_DIRS): { outside: string[]; unnamed: string[]; count: number } {
  const outside: string[] = [];
  const unnamed: string[] = [];
  let count = 0;
  for (const file of dirs.flatMap((d) => productFiles(path.join(root, d)))) {
    for (const decl of moduleOf(file).classes) {
      if (file === BASE.file) continue;
      const chain = chainOf(file, decl);
      if (!isErrorChain(chain) && !chain.some(isBase)) continue;
      count++;
      const where = `${path.relative(root, file)}:${decl.line} class ${decl.name}`;
      if (!chain.some(isBase)) outside.push(`${where} extends ${decl.base}`);
      if (BUNDLED_DIRS.some((d) => file.startsWith(path.join(root, d, path.sep))) && decl.literalName !== decl.name) unnamed.push(where);
    }
  }
  return { outside, unnamed, count };
}

describe('house: one error hierarchy', () => {
  test('every error class in the product code extends PipelineError (runtime/pipeline-error.ts)', () => {
    const { outside, count } = errorClasses();
    assert.deepEqual(outside, [], 'extend the family base of the error\'s category (UsageError, ConfigError, SourceError, ...) instead of Error');
    // The walk finds them at all: the product has had over forty error classes since this test was written.
    assert.ok(count >= 40, `only ${count} error classes found: the walk no longer reads the product code`);
  });

  test('an error class bundled into a Lambda function names itself with a literal (minification renames classes)', () => {
    // The Lambda bundles are minified (lib/constructs/function-role.ts), so PipelineError's
    // `new.target.name` would log a renamed class; the name is what the logs and the state machine show.
    assert.deepEqual(errorClasses().unnamed, [], "add `override name = '<ClassName>';`");
  });

  test('the walk follows imports, aliases and re-exports, and counts a class extending Error at any depth', () => {
    // bench/bench.ts re-exports the runtime's UsageError: a name followed through `export { X }`.
    assert.ok(chainOfExport(path.join(REPO_ROOT, 'bench', 'bench.ts'), 'UsageError').some(isBase));
    // SelectionError → ModelError (another module) → ConfigError → PipelineError.
    const models = path.join(REPO_ROOT, 'containers', 'transform', 'src', 'models.ts');
    const selection = moduleOf(models).classes.find((c) => c.name === 'SelectionError')!;
    assert.deepEqual(
      chainOf(models, selection).map((r) => (r.kind === 'class' ? r.decl.name : r.name)),
      ['ModelError', 'ConfigError', 'PipelineError', 'Error'],
    );
  });
});

function chainOfExport(file: string, exported: string): Resolved[] {
  const r = resolveExport(file, exported, new Set());
  return r.kind === 'class' ? [r, ...chainOf(r.file, r.decl)] : [r];
}

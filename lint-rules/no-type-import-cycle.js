// import-x/no-cycle skips type-only imports (hard-wired in its rule: there is no option), so a
// cycle closed by `import type` (a shared type declared in one of the modules that use it) passes
// it. This rule finds exactly those: cycles between our modules with at least one type-only
// import on them. Cycles of value imports only are left to import-x/no-cycle, so no cycle is
// reported twice. Static imports and re-exports with a relative path are followed; `import()`
// is not (import-x/no-cycle sees those).
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** file → its relative imports: { to: resolved file, typeOnly, line, specifier }. One lint run. */
const graph = new Map();

function resolveSpecifier(from, specifier) {
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((c) => c.endsWith('.ts') || c.endsWith('.tsx') ? existsSync(c) && statSync(c).isFile() : false);
}

function isTypeOnly(node) {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly;
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import runs the module
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return !clause.name && !!named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
}

function importsOf(file) {
  let edges = graph.get(file);
  if (edges) return edges;
  edges = [];
  graph.set(file, edges);
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  for (const node of source.statements) {
    if (!(ts.isImportDeclaration(node) || ts.isExportDeclaration(node))) continue;
    const spec = node.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
    const to = resolveSpecifier(file, spec.text);
    if (!to) continue;
    edges.push({ to, typeOnly: isTypeOnly(node), line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, specifier: spec.text });
  }
  return edges;
}

/** A path from `start` back to `target` with a type-only import on it (or `typeSoFar`), as files; else undefined. */
function typeCycle(start, target, typeSoFar) {
  const seen = new Set([`${start}|${typeSoFar}`]);
  const queue = [{ file: start, typed: typeSoFar, route: [start] }];
  while (queue.length) {
    const { file, typed, route } = queue.shift();
    for (const edge of importsOf(file)) {
      const t = typed || edge.typeOnly;
      if (edge.to === target) {
        if (t) return [...route, target];
        continue;
      }
      const key = `${edge.to}|${t}`;
      if (seen.has(key)) continue;
      seen.add(key);
      queue.push({ file: edge.to, typed: t, route: [...route, edge.to] });
    }
  }
  return undefined;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Import cycles closed by a type-only import (import-x/no-cycle does not see them)' },
    schema: [],
    messages: { cycle: 'Import cycle through a type-only import: {{route}}. Move the shared type to a module of its own.' },
  },
  create(context) {
    const file = context.physicalFilename;
    if (!file.endsWith('.ts') || !existsSync(file)) return {};
    return {
      'Program:exit'() {
        const root = context.cwd;
        for (const edge of importsOf(file)) {
          const route = typeCycle(edge.to, file, edge.typeOnly);
          if (!route) continue;
          context.report({
            loc: { line: edge.line, column: 0 },
            messageId: 'cycle',
            data: { route: [file, ...route].map((f) => path.relative(root, f)).join(' → ') },
          });
        }
      },
    };
  },
};

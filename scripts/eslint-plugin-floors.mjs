// ESLint rules that keep the workspace's floors (see scripts/floors.mjs):
//   floors/no-upward-import  a package imports only workspace packages on lower floors
//   floors/no-deep-import    another package only through its `exports` (`@berth/x`, `@berth/x/testing`),
//                            never by a path into its files; a relative import stays in its package
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { floorViolation } from './floors.mjs';

const packageOf = new Map();

/** The nearest package.json above `file`: its directory, name and `exports` keys. */
function owningPackage(file) {
  let dir = path.dirname(file);
  const seen = [];
  for (;;) {
    const cached = packageOf.get(dir);
    if (cached !== undefined) {
      for (const d of seen) packageOf.set(d, cached);
      return cached;
    }
    seen.push(dir);
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const json = JSON.parse(readFileSync(manifest, 'utf8'));
      const found = { dir, name: json.name, exports: Object.keys(json.exports ?? { '.': '' }) };
      for (const d of seen) packageOf.set(d, found);
      return found;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

const workspaceExports = new Map();

/** The `exports` keys of a workspace package, read from its package.json beside the importer's tree. */
function exportsOf(name, root) {
  if (!workspaceExports.has(name)) {
    const dirName = name.slice('@berth/'.length);
    const candidates = [path.join(root, 'packages', dirName, 'package.json'), path.join(root, 'apps', dirName, 'package.json')];
    const manifest = candidates.find((c) => existsSync(c));
    workspaceExports.set(name, manifest === undefined ? undefined : Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).exports ?? {}));
  }
  return workspaceExports.get(name);
}

/** Calls `check(node, specifier)` for every static or dynamic import, re-export and import type. */
function visitImports(check) {
  const literal = (source) => (source?.type === 'Literal' && typeof source.value === 'string' ? source.value : undefined);
  const visit = (node, source) => {
    const specifier = literal(source);
    if (specifier !== undefined) check(source, specifier);
  };
  return {
    ImportDeclaration: (node) => visit(node, node.source),
    ExportNamedDeclaration: (node) => visit(node, node.source),
    ExportAllDeclaration: (node) => visit(node, node.source),
    ImportExpression: (node) => visit(node, node.source),
    TSImportType: (node) => visit(node, node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument),
  };
}

const workspaceName = (specifier) => specifier.split('/').slice(0, 2).join('/');

const noUpwardImport = {
  meta: { type: 'problem', docs: { description: 'a package imports only workspace packages on lower floors' }, schema: [] },
  create(context) {
    const own = owningPackage(context.filename);
    if (own === undefined) return {};
    return visitImports((node, specifier) => {
      if (!specifier.startsWith('@berth/')) return;
      const why = floorViolation(own.name, workspaceName(specifier));
      if (why !== undefined) context.report({ node, message: why });
    });
  },
};

const noDeepImport = {
  meta: { type: 'problem', docs: { description: "another package only through its exports; relative imports stay in their package" }, schema: [] },
  create(context) {
    const own = owningPackage(context.filename);
    if (own === undefined) return {};
    const root = path.dirname(path.dirname(own.dir));
    return visitImports((node, specifier) => {
      if (specifier.startsWith('@berth/')) {
        const name = workspaceName(specifier);
        const sub = specifier.slice(name.length);
        if (sub === '') return;
        const exported = exportsOf(name, root);
        if (exported !== undefined && exported.includes(`.${sub}`)) return;
        context.report({
          node,
          message: `${specifier} reaches into ${name}: import what its exports map offers (${(exported ?? []).filter((e) => e !== './package.json').join(', ')})`,
        });
      } else if (specifier.startsWith('.')) {
        const target = path.resolve(path.dirname(context.filename), specifier);
        if (target === own.dir || target.startsWith(own.dir + path.sep)) return;
        context.report({ node, message: `${specifier} reaches out of ${own.name}: import another package by its name and exports` });
      }
    });
  },
};

export default {
  meta: { name: 'floors' },
  rules: { 'no-upward-import': noUpwardImport, 'no-deep-import': noDeepImport },
};

#!/usr/bin/env node
// The README's layout table, drawn from the real import graph: for each workspace package, by
// floor (scripts/floors.mjs), the workspace packages its sources (src/, tests aside) import.
//   node scripts/layout.mjs           prints the table
//   node scripts/layout.mjs --write   puts it into README.md between the layout markers
//   node scripts/layout.mjs --check   fails when README.md's table is not the one the code draws
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLOORS } from './floors.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BEGIN = '<!-- layout: drawn by scripts/layout.mjs from the imports of src/; do not edit by hand -->';
const END = '<!-- layout end -->';

function sources(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...sources(full));
    else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

function workspacePackages() {
  const out = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(path.join(root, group)).sort()) {
      const dir = path.join(root, group, name);
      let manifest;
      try {
        manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      const imports = new Set();
      for (const file of sources(path.join(dir, 'src'))) {
        for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(@berth\/[^'/]+)/g)) {
          if (specifier !== manifest.name) imports.add(specifier);
        }
      }
      out.push({ name: manifest.name, dir: `${group}/${name}`, imports: [...imports].sort() });
    }
  }
  return out;
}

export function layoutTable() {
  const packages = workspacePackages().sort((a, b) => (FLOORS[b.name] ?? 0) - (FLOORS[a.name] ?? 0) || a.name.localeCompare(b.name));
  const short = (name) => name.replace('@berth/', '');
  const lines = ['| floor | package | imports (from its `src/`) |', '|---|---|---|'];
  for (const p of packages) {
    const imports = p.imports.length === 0 ? 'nothing of the workspace' : p.imports.map((i) => `\`${short(i)}\``).join(', ');
    lines.push(`| ${FLOORS[p.name] ?? '?'} | [\`${p.name}\`](${p.dir}) | ${imports} |`);
  }
  return lines.join('\n');
}

const readme = path.join(root, 'README.md');
const text = readFileSync(readme, 'utf8');
const begin = text.indexOf(BEGIN);
const end = text.indexOf(END);
const table = layoutTable();
const mode = process.argv[2];
if (mode === undefined) {
  process.stdout.write(`${table}\n`);
} else if (begin < 0 || end < begin) {
  process.stderr.write(`README.md has no layout markers (${BEGIN} … ${END})\n`);
  process.exit(1);
} else {
  const current = text.slice(begin + BEGIN.length, end).trim();
  if (mode === '--write') {
    writeFileSync(readme, `${text.slice(0, begin + BEGIN.length)}\n${table}\n${text.slice(end)}`);
  } else if (current !== table) {
    process.stderr.write(`README.md's layout table is not what the imports draw; run node scripts/layout.mjs --write\n\nexpected:\n${table}\n`);
    process.exit(1);
  }
}

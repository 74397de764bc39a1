#!/usr/bin/env bash
# Scaffolds packages/<name> (or apps/<name> with --app) with the house layout.
set -euo pipefail
dir=packages; private=false
if [ "${1:-}" = "--app" ]; then dir=apps; private=true; shift; fi
name=$1; desc=${2:-}
p=$dir/$name
mkdir -p "$p/src"
cat > "$p/package.json" <<JSON
{
  "name": "@berth/$name",
  "version": "0.0.0",
  "description": "$desc",
  "license": "Apache-2.0",
  "private": $private,
  "type": "module",
  "sideEffects": false,
  "engines": { "node": ">=20.18" },
  "files": ["dist"],
  "exports": {
    ".": { "@berth/source": "./src/index.ts", "types": "./dist/index.d.ts", "default": "./dist/index.js" },
    "./package.json": "./package.json"
  },
  "scripts": {
    "build": "tsc -p tsconfig.build.json",
    "typecheck": "tsc -p tsconfig.json --noEmit"
  },
  "dependencies": {
    "tslib": "^2.8.1"
  }
}
JSON
cat > "$p/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "noEmit": true, "customConditions": ["@berth/source"] },
  "include": ["src", "test"]
}
JSON
cat > "$p/tsconfig.build.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist" },
  "include": ["src"],
  "exclude": ["src/**/*.test.ts"]
}
JSON
cat > "$p/vitest.config.ts" <<TS
import { defineProject } from 'vitest/config';

const conditions = ['@berth/source', 'node', 'import', 'default'];

export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: { name: '$name' },
});
TS

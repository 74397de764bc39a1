#!/usr/bin/env node
// Runs every vitest project once and prints the closing line `N passed, N failed, N skipped`.
// Under CI a skipped test is a failure: tests that need a real part must run there.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const report = 'test-results/vitest.json';
mkdirSync('test-results', { recursive: true });
const run = spawnSync(
  'pnpm',
  ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);

let results;
try {
  results = JSON.parse(readFileSync(report, 'utf8'));
} catch (err) {
  console.error(`no test report at ${report}: ${err.message}`);
  process.exit(run.status || 1);
}

const skipped = [];
for (const file of results.testResults ?? []) {
  for (const test of file.assertionResults ?? []) {
    if (test.status === 'pending' || test.status === 'skipped' || test.status === 'todo') {
      skipped.push(`${file.name}: ${test.fullName}`);
    }
  }
}
const passed = results.numPassedTests ?? 0;
const failed = results.numFailedTests ?? 0;
let status = run.status ?? 1;
// A test file that fails to load has no failed test in it, but the run has failed.
const brokenFiles = (results.testResults ?? []).filter((file) => file.status === 'failed' && (file.assertionResults ?? []).length === 0);
if (brokenFiles.length > 0) {
  console.log(`\n${brokenFiles.length} test file(s) failed to run:\n  ${brokenFiles.map((file) => file.name).join('\n  ')}`);
  status = 1;
}
if (skipped.length > 0) {
  console.log(`\n${skipped.length} skipped test(s):\n  ${skipped.join('\n  ')}`);
  if (process.env.CI) {
    console.log('CI must not skip tests that need a real part; failing the run.');
    status = 1;
  }
}
if (passed + failed === 0) status = 1;
console.log(`\n${passed} passed, ${failed + brokenFiles.length} failed, ${skipped.length} skipped`);
process.exit(status);

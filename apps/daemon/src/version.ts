import { readFileSync } from 'node:fs';

/** Set by the bundler (scripts/bundle.mjs) to the package version; absent when run from tsc output. */
declare const BERTHD_BUNDLED_VERSION: string | undefined;

/** berth's own version (the daemon's package version), reported as the Engine version. */
export const BERTH_VERSION: string =
  typeof BERTHD_BUNDLED_VERSION === 'string' ? BERTHD_BUNDLED_VERSION : readPackageVersion();

/** The newest Engine API version served; clients negotiate down from the `Api-Version` header. */
export const MAX_API_VERSION = '1.51';

/** The oldest Engine API version served (moby's lowest configurable minimum). */
export const MIN_API_VERSION = '1.24';

function readPackageVersion(): string {
  // Both src/ (tests) and dist/ (the binary) sit one level below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

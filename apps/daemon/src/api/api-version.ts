/**
 * moby's `versions.compare`: dot-separated numbers compared left to right, a missing or unparsable
 * part counting as 0 (`1.4` < `1.24`).
 */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  const left = a.split('.');
  const right = b.split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = part(left[i]);
    const r = part(right[i]);
    if (l !== r) return l > r ? 1 : -1;
  }
  return 0;
}

export const versionLessThan = (a: string, b: string): boolean => compareVersions(a, b) < 0;
export const versionGreaterThan = (a: string, b: string): boolean => compareVersions(a, b) > 0;

function part(value: string | undefined): number {
  const n = Number(value ?? '0');
  return Number.isFinite(n) ? n : 0;
}

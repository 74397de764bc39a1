/**
 * moby's `versions.compare`: dot-separated numbers compared left to right, a missing or unparsable
 * part counting as 0 (`1.4` < `1.24`).
 */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  // Part by part without splitting (every request compares its version two or three times); a
  // string with n dots has n + 1 parts, and past its last one a string's parts count as 0.
  let i = 0;
  let j = 0;
  while (i <= a.length || j <= b.length) {
    const endA = i <= a.length ? partEnd(a, i) : i;
    const endB = j <= b.length ? partEnd(b, j) : j;
    const l = i <= a.length ? partValue(a, i, endA) : 0;
    const r = j <= b.length ? partValue(b, j, endB) : 0;
    if (l !== r) return l > r ? 1 : -1;
    i = endA + 1;
    j = endB + 1;
  }
  return 0;
}

export const versionLessThan = (a: string, b: string): boolean => compareVersions(a, b) < 0;
export const versionGreaterThan = (a: string, b: string): boolean => compareVersions(a, b) > 0;

function partEnd(s: string, from: number): number {
  const dot = s.indexOf('.', from);
  return dot < 0 ? s.length : dot;
}

function partValue(s: string, from: number, to: number): number {
  let n = 0;
  for (let k = from; k < to; k++) {
    const digit = s.charCodeAt(k) - 48;
    if (digit < 0 || digit > 9) {
      const parsed = Number(s.slice(from, to));
      return Number.isFinite(parsed) ? parsed : 0;
    }
    n = n * 10 + digit;
  }
  return n;
}

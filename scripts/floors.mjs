// The house by floors (DESIGN.md): a package imports only packages on floors below its own;
// leaves (floor 1) import nothing of the workspace but other leaves. `pnpm lint` enforces it
// (eslint.config.js), and the README's layout section is drawn from it and the real imports
// (scripts/layout.mjs). A new package gets its floor here.

/** @type {Readonly<Record<string, number>>} */
export const FLOORS = {
  '@berth/errdefs': 1,
  '@berth/filters': 1,
  '@berth/locker': 1,
  '@berth/logger': 1,
  '@berth/gocompat': 1,
  '@berth/host': 1,
  '@berth/bbolt': 1,
  '@berth/plugin-store': 2,
  '@berth/volume-drivers': 2,
  '@berth/plugin-registry': 3,
  '@berth/plugin-executor-containerd': 3,
  '@berth/volume-service': 3,
  '@berth/volume-cluster-etcd': 3,
  '@berth/plugin-manager': 4,
  '@berth/daemon': 5,
};

/** Why `from` may not import `to`, or undefined when it may. */
export function floorViolation(from, to) {
  if (from === to) return undefined;
  const a = FLOORS[from];
  const b = FLOORS[to];
  if (a === undefined) return `${from} has no floor: give it one in scripts/floors.mjs`;
  if (b === undefined) return `${to} has no floor: give it one in scripts/floors.mjs`;
  if (b < a || (a === 1 && b === 1)) return undefined;
  const where = b === a ? 'its own floor' : 'a higher floor';
  return `${from} (floor ${a}) may not import ${to} (floor ${b}, ${where}): a package imports only packages below it`;
}

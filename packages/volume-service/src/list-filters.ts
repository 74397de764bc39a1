import { invalidParameter } from '@berth/errdefs';
import type { Filters } from '@berth/filters';
import { DEFAULT_DRIVER_NAME } from '@berth/volume-drivers';
import type { StoredVolume } from './stored-volume.js';

/** Set (to `""`) on every volume created without a name; default prunes only remove these. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export const LIST_FILTERS: readonly string[] = ['dangling', 'name', 'driver', 'label'];
export const PRUNE_FILTERS: readonly string[] = ['label', 'label!', 'all'];

/** What `VolumeStore.find` selects: moby's `By` combinators, flattened to one AND. */
export interface VolumeQuery {
  /** Ask only these drivers (exact canonical names). */
  readonly drivers?: readonly string[];
  /** Keep only referenced (`true`) or unreferenced (`false`) volumes. */
  readonly referenced?: boolean;
  readonly match?: (volume: StoredVolume) => boolean;
}

/** `GET /volumes` filters: `dangling`, `name` (regexp), `driver` (exact), `label`. */
export function listQuery(filters: Filters): VolumeQuery {
  filters.validate(LIST_FILTERS);
  const drivers = filters.get('driver');
  const byName = filters.contains('name');
  const byLabel = labelMatcher(filters);
  const query: { -readonly [K in keyof VolumeQuery]: VolumeQuery[K] } = {};
  // Without a name or label filter every volume matches: no call per volume.
  if (byName || filters.contains('label') || filters.contains('label!')) {
    query.match = (v: StoredVolume): boolean => (!byName || filters.match('name', v.name)) && byLabel(v);
  }
  if (drivers.length > 0) query.drivers = drivers;
  if (filters.contains('dangling')) query.referenced = !filters.getBoolOrDefault('dangling', false);
  return query;
}

/**
 * `POST /volumes/prune` filters: `label`, `label!`, `all`. Candidates are unreferenced `local`
 * volumes without driver options (mounts of devices, NFS, ... are never pruned) and, unless
 * `all` is true, only anonymous ones. `filters` is not modified.
 */
export function pruneQuery(filters: Filters): VolumeQuery {
  const effective = filters.clone();
  withPrune(effective);
  effective.validate(PRUNE_FILTERS);
  const byLabel = labelMatcher(effective);
  return {
    drivers: [DEFAULT_DRIVER_NAME],
    referenced: false,
    match: (v) => byLabel(v) && (v.options === null || Object.keys(v.options).length === 0),
  };
}

/** moby's `withPrune`: validates `all` and, unless it is true, ANDs in the anonymous label. */
export function withPrune(filters: Filters): void {
  const all = filters.get('all');
  if (all.length > 1) {
    throw invalidParameter(`invalid filter 'all=[${all.join(' ')}]': only one value is expected`);
  }
  const [value] = all;
  if (value !== undefined) {
    const parsed = parseGoBool(value);
    if (parsed === undefined) {
      throw invalidParameter(`invalid filter 'all': strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`);
    }
    if (parsed) return;
  }
  filters.add('label', ANONYMOUS_LABEL);
}

/** moby's `byLabelFilter`: every `label` must match; when `label!` is given, not all of them may. */
function labelMatcher(filters: Filters): (v: StoredVolume) => boolean {
  const negated = filters.contains('label!');
  return (v) => filters.matchKVList('label', v.labels) && !(negated && filters.matchKVList('label!', v.labels));
}

/** Go's `strconv.ParseBool`. */
function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

import { invalidFilter, type Filters } from '@berth/filters';
import type { EventMessage } from './event-message.js';

/** The keys moby's events filter knows; the fuzzy ones match `Actor.ID` or the `name` attribute. */
const FUZZY_KEYS = ['daemon', 'container', 'plugin', 'volume', 'network', 'node', 'service', 'secret', 'config'] as const;
export const EVENT_FILTER_KEYS: readonly string[] = ['type', 'event', 'scope', 'label', 'image', ...FUZZY_KEYS];

const FUZZY_EVENTS = new Set(['health_status', 'exec_create', 'exec_start']);

export type EventPredicate = (message: EventMessage) => boolean;

/**
 * moby's `events.Filter.Include`. An unknown key is a 400 `invalid filter '<key>'`, where moby
 * silently matches everything: a typo should not turn a filtered stream into the full one.
 * No filters at all gives `undefined` (every event).
 */
export function eventFilter(filters: Filters): EventPredicate | undefined {
  for (const key of filters.keys()) if (!EVENT_FILTER_KEYS.includes(key)) throw invalidFilter(key);
  if (filters.size === 0) return undefined;
  return (m) =>
    matchEvent(filters, m) &&
    filters.exactMatch('type', m.Type) &&
    (!filters.contains('scope') || filters.exactMatch('scope', m.scope)) &&
    FUZZY_KEYS.every((key) => filters.fuzzyMatch(key, m.Actor.ID) || filters.fuzzyMatch(key, m.Actor.Attributes.name ?? '')) &&
    matchImage(filters, m) &&
    (!filters.contains('label') || filters.matchKVList('label', m.Actor.Attributes));
}

function matchEvent(filters: Filters, m: EventMessage): boolean {
  if (filters.get('event').some((v) => FUZZY_EVENTS.has(v))) return filters.fuzzyMatch('event', m.Action);
  return filters.exactMatch('event', m.Action);
}

/** Image events carry the image in `name`, others in `image`; tags are ignored as moby does. */
function matchImage(filters: Filters, m: EventMessage): boolean {
  const id = m.Actor.ID;
  const name = m.Actor.Attributes[m.Type === 'image' ? 'name' : 'image'] ?? '';
  return [id, name, stripTag(id), stripTag(name)].some((candidate) => filters.exactMatch('image', candidate));
}

/** The familiar repository name of an image reference (`docker.io/library/a:1` → `a`), best effort. */
function stripTag(ref: string): string {
  const withoutDigest = ref.replace(/@.*$/s, '');
  const withoutTag = withoutDigest.replace(/:[\w][\w.-]*$/, '');
  return withoutTag.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '');
}

import { Filters } from '@berth/filters';
import { describe, expect, it } from 'vitest';
import type { EventMessage } from './event-message.js';
import { eventFilter } from './event-filter.js';

const event = (over: Partial<EventMessage> & { attributes?: Record<string, string> } = {}): EventMessage => ({
  Type: over.Type ?? 'volume',
  Action: over.Action ?? 'create',
  Actor: { ID: over.Actor?.ID ?? 'data1', Attributes: over.attributes ?? { driver: 'local' } },
  scope: over.scope ?? 'local',
  time: 1,
  timeNano: 1_000_000_000n,
});

const matches = (pairs: Array<[string, string]>, m: EventMessage): boolean => {
  const filter = eventFilter(Filters.of(pairs));
  return filter === undefined || filter(m);
};

describe('eventFilter', () => {
  it('is undefined without filters', () => {
    expect(eventFilter(Filters.empty())).toBeUndefined();
  });

  it('matches type, event and scope exactly', () => {
    expect(matches([['type', 'volume']], event())).toBe(true);
    expect(matches([['type', 'network']], event())).toBe(false);
    expect(matches([['type', 'network'], ['type', 'volume']], event())).toBe(true);
    expect(matches([['event', 'create']], event())).toBe(true);
    expect(matches([['event', 'creat']], event())).toBe(false);
    expect(matches([['scope', 'swarm']], event())).toBe(false);
    expect(matches([['scope', 'local']], event())).toBe(true);
  });

  it('matches volume and plugin names by prefix on the ID or the name attribute', () => {
    expect(matches([['volume', 'data']], event())).toBe(true);
    expect(matches([['volume', 'ata1']], event())).toBe(false);
    expect(matches([['plugin', 'vie']], event({ Type: 'plugin', Actor: { ID: 'abc', Attributes: {} }, attributes: { name: 'vieux/sshfs:latest' } }))).toBe(true);
  });

  it('accepts container, image, network and daemon filters, which volume events do not match', () => {
    for (const key of ['container', 'image', 'network', 'daemon']) expect(matches([[key, 'x']], event()), key).toBe(false);
  });

  it('matches labels as a key/value list on the attributes', () => {
    expect(matches([['label', 'driver']], event())).toBe(true);
    expect(matches([['label', 'driver=local']], event())).toBe(true);
    expect(matches([['label', 'driver=other']], event())).toBe(false);
  });

  it('fuzzy-matches the health/exec events as moby does', () => {
    expect(matches([['event', 'health_status']], event({ Action: 'health_status: healthy' }))).toBe(true);
  });

  it('refuses unknown keys', () => {
    expect(() => eventFilter(Filters.of([['evnet', 'create']]))).toThrow(expect.objectContaining({ kind: 'invalid-parameter', message: "invalid filter 'evnet'" }));
  });
});

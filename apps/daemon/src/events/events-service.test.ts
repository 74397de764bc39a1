import { describe, expect, it } from 'vitest';
import { encodeEvent, type EventMessage } from './event-message.js';
import { EventsService } from './events-service.js';

function clock(start = 1_000n): { now: () => bigint; set: (t: bigint) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v) };
}

describe('EventsService', () => {
  it('stamps volume events in the shape of moby', () => {
    const c = clock(1_700_000_000_123_456_789n);
    const events = new EventsService({ now: c.now });
    const { subscription } = events.subscribe();
    events.logVolumeEvent('data1', 'create', { driver: 'local' });
    return subscription.next().then((m) => {
      expect(encodeEvent(m as EventMessage)).toBe(
        '{"Type":"volume","Action":"create","Actor":{"ID":"data1","Attributes":{"driver":"local"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}',
      );
    });
  });

  it('sorts attributes as Go does', () => {
    const m: EventMessage = { Type: 'volume', Action: 'mount', Actor: { ID: 'v', Attributes: { ref: 'r', driver: 'local' } }, scope: 'local', time: 0, timeNano: 0n };
    expect(encodeEvent(m)).toContain('"Attributes":{"driver":"local","ref":"r"}');
  });

  it('replays buffered events between since and until, none without either', () => {
    const c = clock();
    const events = new EventsService({ now: c.now, historySize: 3 });
    for (const [t, name] of [[10n, 'a'], [20n, 'b'], [30n, 'c'], [40n, 'd']] as const) {
      c.set(t);
      events.logVolumeEvent(name, 'create', {});
    }
    const ids = (o: Parameters<EventsService['subscribe']>[0]): string[] => events.subscribe(o).buffered.map((m) => m.Actor.ID);
    expect(ids({})).toEqual([]);
    expect(ids({ since: 0n })).toEqual(['b', 'c', 'd']);
    expect(ids({ since: 30n })).toEqual(['c', 'd']);
    expect(ids({ until: 30n })).toEqual(['b', 'c']);
    expect(ids({ since: 25n, until: 35n })).toEqual(['c']);
    expect(ids({ since: 0n, filter: (m) => m.Actor.ID !== 'c' })).toEqual(['b', 'd']);
  });

  it('delivers live events to filtered subscribers and counts them', async () => {
    const events = new EventsService();
    const all = events.subscribe().subscription;
    const onlyB = events.subscribe({ filter: (m) => m.Actor.ID === 'b' }).subscription;
    expect(events.subscriberCount).toBe(2);
    events.logVolumeEvent('a', 'create', {});
    events.logVolumeEvent('b', 'create', {});
    expect((await all.next())?.Actor.ID).toBe('a');
    expect((await all.next())?.Actor.ID).toBe('b');
    expect((await onlyB.next())?.Actor.ID).toBe('b');
    onlyB.close();
    expect(events.subscriberCount).toBe(1);
  });

  it('never blocks the publisher: a subscriber that does not read loses what does not fit', async () => {
    const events = new EventsService({ queueSize: 2 });
    const slow = events.subscribe().subscription;
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) events.logVolumeEvent(`v${i}`, 'create', {});
    expect(performance.now() - started).toBeLessThan(1000);
    expect(slow.dropped).toBe(9_998);
    expect((await slow.next())?.Actor.ID).toBe('v0');
    expect((await slow.next())?.Actor.ID).toBe('v1');
  });

  it('ends every subscription on close and drops later events', async () => {
    const events = new EventsService();
    const { subscription } = events.subscribe();
    const waiting = subscription.next();
    events.close();
    expect(await waiting).toBeUndefined();
    events.logVolumeEvent('late', 'create', {});
    expect(events.subscribe({ since: 0n }).buffered).toEqual([]);
    const seen: string[] = [];
    for await (const m of events.subscribe().subscription) seen.push(m.Actor.ID);
    expect(seen).toEqual([]);
  });

  it('stamps nanoseconds of the wall clock, not milliseconds padded with zeros', async () => {
    const events = new EventsService();
    const stamps: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      stamps.push(events.now());
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(stamps.filter((t) => t % 1_000_000n !== 0n).length).toBeGreaterThan(15);
    const wall = BigInt(Date.now()) * 1_000_000n;
    const last = stamps.at(-1) as bigint;
    expect(last <= wall + 10_000_000n && last >= wall - 50_000_000n).toBe(true);
  });

  it('stamps strictly increasing times on its default clock', () => {
    const events = new EventsService();
    const stamps = Array.from({ length: 100 }, () => events.now());
    for (let i = 1; i < stamps.length; i++) expect(stamps[i] as bigint).toBeGreaterThan(stamps[i - 1] as bigint);
  });
});

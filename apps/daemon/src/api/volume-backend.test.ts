import { describe, expect, it } from 'vitest';
import type { VolumeInfo } from '@berth/volume-service';
import { VolumeListEncoder } from './volume-backend.js';

const volume = (name: string, labels: Record<string, string> | null = null): VolumeInfo =>
  Object.freeze({ CreatedAt: '2026-12-06T10:00:00Z', Driver: 'local', Labels: labels, Mountpoint: `/v/${name}/_data`, Name: name, Options: null, Scope: 'local' });

describe('VolumeListEncoder', () => {
  it('sends the same bytes again only for the very same volumes and warnings', () => {
    const lists = new VolumeListEncoder();
    const a = volume('a');
    const b = volume('b', { z: '1', a: '2' });
    const first = lists.encode([a, b], []);
    expect(first.toString()).toBe(
      '{"Volumes":[{"CreatedAt":"2026-12-06T10:00:00Z","Driver":"local","Labels":null,"Mountpoint":"/v/a/_data","Name":"a","Options":null,"Scope":"local"},' +
        '{"CreatedAt":"2026-12-06T10:00:00Z","Driver":"local","Labels":{"a":"2","z":"1"},"Mountpoint":"/v/b/_data","Name":"b","Options":null,"Scope":"local"}],"Warnings":null}\n',
    );
    expect(lists.encode([a, b], [])).toBe(first);
    // Another object for a volume (it changed), another order, another set, other warnings: encoded anew.
    const b2 = volume('b', { z: '2' });
    expect(lists.encode([a, b2], []).toString()).toContain('"Labels":{"z":"2"}');
    expect(lists.encode([b2, a], []).toString().indexOf('"Name":"b"')).toBeLessThan(lists.encode([b2, a], []).toString().indexOf('"Name":"a"'));
    expect(lists.encode([a], []).toString()).not.toContain('"Name":"b"');
    expect(lists.encode([a], ['list x: down']).toString()).toMatch(/"Warnings":\["list x: down"\]\}\n$/);
    // A volume made anew on each list (a plugin's) is never shown from an earlier answer.
    const loose: VolumeInfo = { ...a };
    const once = lists.encode([loose], []);
    loose.Name = 'renamed';
    expect(lists.encode([loose], [])).not.toBe(once);
    expect(lists.encode([loose], []).toString()).toContain('"Name":"renamed"');
  });
});

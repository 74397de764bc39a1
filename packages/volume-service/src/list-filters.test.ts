import { kindOf } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { describe, expect, it } from 'vitest';
import { ANONYMOUS_LABEL, listQuery, pruneQuery, withPrune } from './list-filters.js';
import type { StoredVolume } from './stored-volume.js';

const volume = (name: string, labels: Record<string, string> | null, options: Record<string, string> | null = null): StoredVolume =>
  ({ name, driverName: 'local', scope: 'local', labels, options, volume: undefined as never }) as StoredVolume;

describe('withPrune (TestFilterWithPrune)', () => {
  it('adds the anonymous label unless all is 1 or true', () => {
    let f = Filters.empty();
    withPrune(f);
    expect(f.get('label')).toEqual([ANONYMOUS_LABEL]);

    f = Filters.of([
      ['label', 'foo=bar'],
      ['label', 'bar=baz'],
    ]);
    withPrune(f);
    expect(f.get('label')).toHaveLength(3);
    expect(f.match('label', ANONYMOUS_LABEL)).toBe(true);
    expect(f.match('label', 'foo=bar')).toBe(true);
    expect(f.match('label', 'bar=baz')).toBe(true);

    for (const all of ['1', 'true', 'True', 't']) {
      f = Filters.of([
        ['label', 'foo=bar'],
        ['all', all],
      ]);
      withPrune(f);
      expect(f.get('label')).toEqual(['foo=bar']);
    }

    for (const all of ['0', 'false']) {
      f = Filters.of([['all', all]]);
      withPrune(f);
      expect(f.get('label')).toEqual([ANONYMOUS_LABEL]);
    }
  });

  it("rejects an empty or repeated 'all' with moby's texts", () => {
    const empty = (() => {
      try {
        withPrune(Filters.of([['all', '']]));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect((empty as Error).message).toBe(`invalid filter 'all': strconv.ParseBool: parsing "": invalid syntax`);
    expect(kindOf(empty)).toBe('invalid-parameter');
    expect(() =>
      withPrune(
        Filters.of([
          ['all', '1'],
          ['all', '0'],
        ]),
      ),
    ).toThrow(`invalid filter 'all=[1 0]': only one value is expected`);
  });
});

describe('listQuery', () => {
  it('accepts exactly dangling, name, driver and label', () => {
    expect(() => listQuery(Filters.of([['label!', 'a']]))).toThrow("invalid filter 'label!'");
    expect(() => listQuery(Filters.of([['dangling', 'maybe']]))).toThrow("invalid filter 'dangling=[maybe]'");
    expect(listQuery(Filters.of([['dangling', '1']])).referenced).toBe(false);
    expect(listQuery(Filters.of([['dangling', 'false']])).referenced).toBe(true);
    expect(listQuery(Filters.empty()).referenced).toBeUndefined();
    expect(listQuery(Filters.of([['driver', 'd1']])).drivers).toEqual(['d1']);
  });

  it('matches names as regexps and labels as a KV list', () => {
    const match = listQuery(
      Filters.of([
        ['name', '^da'],
        ['label', 'team=a'],
      ]),
    ).match!;
    expect(match(volume('data', { team: 'a', x: '' }))).toBe(true);
    expect(match(volume('data', { team: 'b' }))).toBe(false);
    expect(match(volume('odata', { team: 'a' }))).toBe(false);
    expect(match(volume('data', null))).toBe(false);
  });
});

describe('pruneQuery', () => {
  it('selects unused local anonymous volumes without options, and leaves the filters alone', () => {
    const filters = Filters.empty();
    const query = pruneQuery(filters);
    expect(filters.size).toBe(0);
    expect(query.drivers).toEqual(['local']);
    expect(query.referenced).toBe(false);
    expect(query.match!(volume('a', { [ANONYMOUS_LABEL]: '' }))).toBe(true);
    expect(query.match!(volume('a', { [ANONYMOUS_LABEL]: '' }, {}))).toBe(true);
    expect(query.match!(volume('a', { [ANONYMOUS_LABEL]: '' }, { type: 'nfs' }))).toBe(false);
    expect(query.match!(volume('named', { team: 'a' }))).toBe(false);
  });

  it('applies label! as moby: excluded only when every label! matches', () => {
    const byKey = pruneQuery(Filters.of([['label!', 'banana'], ['all', 'true']])).match!;
    expect(byKey(volume('v', { banana: 'split' }))).toBe(false);
    expect(byKey(volume('v', { apple: '' }))).toBe(true);
    expect(byKey(volume('v', null))).toBe(true);

    const byPair = pruneQuery(Filters.of([['label!', 'banana=split'], ['all', 'true']])).match!;
    expect(byPair(volume('v', { banana: 'split' }))).toBe(false);
    expect(byPair(volume('v', { banana: '' }))).toBe(true);
  });

  it('checks all before the accepted keys, as moby', () => {
    expect(() => pruneQuery(Filters.of([['all', 'x'], ['dangling', 'true']]))).toThrow("invalid filter 'all'");
    expect(() => pruneQuery(Filters.of([['dangling', 'true']]))).toThrow("invalid filter 'dangling'");
    expect(() => pruneQuery(Filters.of([['name', 'x']]))).toThrow("invalid filter 'name'");
  });
});

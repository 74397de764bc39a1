import { describe, expect, it } from 'vitest';
import { decodeGo, goBool, goString, goStringMap, goStringSlice, goStruct } from './json-decode.js';
import { unmarshalValue } from './json-scanner.js';

const CREATE = goStruct('volume.CreateOptions', {
  Name: goString,
  Labels: goStringMap,
  Spec: goStruct('volume.ClusterVolumeSpec', { Group: goString }),
  Hosts: goStringSlice,
  Debug: goBool,
});

const decode = (json: string): unknown => decodeGo(unmarshalValue(Buffer.from(json)), CREATE);

describe('decodeGo', () => {
  it('matches field names exactly first, then case-insensitively, and ignores unknown fields', () => {
    expect(decode('{"name":"a","LABELS":{"k":"v"},"other":[1,{"x":2}]}')).toEqual({ Name: 'a', Labels: { k: 'v' } });
    expect(decode('{"name":"lower","Name":"exact"}')).toEqual({ Name: 'exact' });
  });

  it('leaves zero values for null and keeps null maps as null', () => {
    expect(decode('{"Name":null,"Labels":null,"Spec":null}')).toEqual({ Labels: null });
    expect(decode('null')).toBeUndefined();
  });

  it('merges a repeated map field, last value per key wins', () => {
    expect(decode('{"Labels":{"a":"1","b":"1"},"labels":{"b":"2"}}')).toEqual({ Labels: { a: '1', b: '2' } });
  });

  it('reports the first type mismatch with Go texts', () => {
    expect(() => decode('{"Labels":"x"}')).toThrow('json: cannot unmarshal string into Go struct field CreateOptions.Labels of type map[string]string');
    expect(() => decode('{"Labels":{"a":1}}')).toThrow('json: cannot unmarshal number into Go struct field CreateOptions.Labels of type string');
    expect(() => decode('{"Name":true,"Labels":"x"}')).toThrow('json: cannot unmarshal bool into Go struct field CreateOptions.Name of type string');
    expect(() => decode('{"Spec":[]}')).toThrow('json: cannot unmarshal array into Go struct field CreateOptions.Spec of type volume.ClusterVolumeSpec');
    expect(() => decode('{"Spec":{"Group":{}}}')).toThrow('json: cannot unmarshal object into Go struct field ClusterVolumeSpec.Spec.Group of type string');
    expect(() => decode('{"Hosts":"h"}')).toThrow('json: cannot unmarshal string into Go struct field CreateOptions.Hosts of type []string');
    expect(() => decode('{"Debug":"yes"}')).toThrow('json: cannot unmarshal string into Go struct field CreateOptions.Debug of type bool');
    expect(() => decode('[]')).toThrow('json: cannot unmarshal array into Go value of type volume.CreateOptions');
    expect(() => decode('"x"')).toThrow('json: cannot unmarshal string into Go value of type volume.CreateOptions');
  });

  it('keeps hostile keys as plain data', () => {
    const out = decode('{"Labels":{"__proto__":"x","constructor":"y"}}') as { Labels: Record<string, string> };
    expect(Object.keys(out.Labels)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

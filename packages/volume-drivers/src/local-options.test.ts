import { describe, expect, it } from 'vitest';
import { isInvalidParameter } from '@berth/errdefs';
import { decodeOptsJson, encodeOptsJson, needsMount, toLocalVolumeOptions, validateLocalOptions } from './local-options.js';

function validationError(opts: Record<string, string>, quotaSupported = false): unknown {
  try {
    validateLocalOptions(opts, { quotaSupported });
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('validateLocalOptions', () => {
  it.each([
    [{ hello: 'world' }, 'invalid option: "hello"'],
    [{ type: 'tmpfs', device: 'tmpfs', 'b"ad': 'x' }, 'invalid option: "b\\"ad"'],
    [{ size: 'hello' }, "invalid size: 'hello'"],
    [{ size: '1234' }, 'quota size requested but no quota support'],
    [{ device: 'foo' }, 'missing required option: "type"'],
    [{ type: 'foo' }, 'missing required option: "device"'],
    [{ o: 'foo', type: 'foo' }, 'missing required option: "device"'],
    [{ o: 'foo', device: 'foo' }, 'missing required option: "type"'],
    [{ o: 'foo' }, 'missing required option: "device"'],
    [{ type: 'cifs', device: '//some.example.com:2345/thepath', o: 'foo' }, "port not allowed in CIFS device URL, include 'port' in 'o='"],
    [{ type: 'cifs', device: ':::', o: 'foo' }, 'error parsing mount device url: parse ":::": missing protocol scheme'],
  ])('%j is refused: %s', (opts, text) => {
    const err = validationError(opts);
    expect(isInvalidParameter(err)).toBe(true);
    expect(err).toHaveProperty('message', text);
  });

  it.each([
    {},
    { type: 'foo', device: 'foo' },
    { type: 'foo', device: 'foo', o: 'foo' },
    { type: 'cifs', device: '//some.example.com/thepath', o: 'foo' },
    { size: '0' },
  ])('%j is accepted', (opts) => {
    expect(validationError(opts)).toBeUndefined();
  });

  it('accepts a size when quotas are supported', () => {
    expect(validationError({ size: '1M' }, true)).toBeUndefined();
  });
});

describe('opts.json', () => {
  it('keeps options the way moby writes them', () => {
    const options = toLocalVolumeOptions({ type: 'cifs', device: '//h/s', o: 'password=a&b<c>' });
    expect(options).toEqual({ mountType: 'cifs', mountDevice: '//h/s', mountOpts: 'password=a&b<c>', quotaSize: 0 });
    const json = encodeOptsJson(options!);
    expect(json).toBe('{"MountType":"cifs","MountOpts":"password=a\\u0026b\\u003cc\\u003e","MountDevice":"//h/s","Quota":{"Size":0}}');
    expect(decodeOptsJson(json)).toEqual(options);
    expect(needsMount(options)).toBe(true);
  });

  it('has no options for no driver options', () => {
    expect(toLocalVolumeOptions(undefined)).toBeUndefined();
    expect(toLocalVolumeOptions({})).toBeUndefined();
    expect(needsMount(undefined)).toBe(false);
    expect(needsMount(toLocalVolumeOptions({ size: '0' }))).toBe(false);
  });

  it('decodes like Go: null, empty, case-insensitive names, unknown fields', () => {
    expect(decodeOptsJson('null')).toBeUndefined();
    expect(decodeOptsJson('{}')).toBeUndefined();
    expect(decodeOptsJson('{"MountType":"","MountOpts":"","MountDevice":"","Quota":{"Size":0}}')).toBeUndefined();
    expect(decodeOptsJson('{"mounttype":"tmpfs","MOUNTDEVICE":"tmpfs","Quota":null,"Extra":1,"MountOpts":null}')).toEqual({
      mountType: 'tmpfs',
      mountDevice: 'tmpfs',
      mountOpts: '',
      quotaSize: 0,
    });
    expect(decodeOptsJson('{"Quota":{"size":1048576}}')).toMatchObject({ quotaSize: 1048576 });
  });

  it.each(['', '{', '[]', '"x"', '{"MountType":1}', '{"Quota":{"Size":-1}}', '{"Quota":[]}'])('refuses %j', (text) => {
    expect(() => decodeOptsJson(text)).toThrow();
  });
});

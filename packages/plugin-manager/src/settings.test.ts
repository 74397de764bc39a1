import { describe, expect, it } from 'vitest';
import { initEmptySettings, parsePluginConfig, type PluginObject } from '@berth/plugin-store';
import {
  ALLOWED_SETTABLE_FIELDS,
  applySettings,
  errInvalidFormat,
  errMultipleFields,
  isSettable,
  newSettable,
  updateSettingsEnv,
  type Settable,
} from './settings.js';

describe('settings', () => {
  it('parses name[.field][=value] (TestNewSettable)', () => {
    const cases: Array<[string, string, string, string]> = [
      ['name=value', 'name', '', 'value'],
      ['name', 'name', '', ''],
      ['name.field=value', 'name', 'field', 'value'],
      ['name.field', 'name', 'field', ''],
      ['a.b.c=x=y', 'a.b', 'c', 'x=y'],
    ];
    for (const [arg, name, field, value] of cases) expect(newSettable(arg), arg).toEqual({ name, field, value });
    for (const arg of ['=value', '=']) expect(() => newSettable(arg)).toThrow(errInvalidFormat);
  });

  it('decides what is settable (TestIsSettable)', () => {
    const env = ALLOWED_SETTABLE_FIELDS.env;
    const set = (field = ''): Settable => ({ name: '', field, value: '' });
    expect(isSettable(set(), env, [])).toBe(false);
    expect(isSettable(set('value'), env, [])).toBe(false);
    expect(isSettable(set(), env, ['value'])).toBe(true);
    expect(isSettable(set('value'), env, ['value'])).toBe(true);
    expect(isSettable(set('foo'), env, ['value'])).toBe(false);
    expect(isSettable(set('foo'), env, ['foo'])).toBe(false);
    expect(() => isSettable(set(), env, ['value1', 'value2'])).toThrow(errMultipleFields);
    const defaulted = set();
    isSettable(defaulted, env, ['value']);
    expect(defaulted.field).toBe('value');
  });

  it('replaces or appends an env entry (TestUpdateSettingsEnv)', () => {
    const cases: Array<[string[], string[]]> = [
      [[], ['DEBUG=1']],
      [['DEBUG=0'], ['DEBUG=1']],
      [['FOO=0'], ['FOO=0', 'DEBUG=1']],
      [['FOO=0', 'DEBUG=0'], ['FOO=0', 'DEBUG=1']],
      [['FOO=0', 'DEBUG=0', 'BAR=1'], ['FOO=0', 'DEBUG=1', 'BAR=1']],
    ];
    for (const [env, expected] of cases) {
      updateSettingsEnv(env, { name: 'DEBUG', field: '', value: '1' });
      expect(env).toEqual(expected);
    }
  });

  describe('applySettings (TestPluginSet)', () => {
    const config = parsePluginConfig(
      JSON.stringify({
        Env: [{ Name: 'DEBUG', Settable: ['value'], Value: '0' }, { Name: 'FIXED', Value: 'x' }],
        Mounts: [
          { Name: 'pmount1', Settable: ['source'], Source: '/foo', Destination: '/mnt', Type: 'bind' },
          { Name: 'pmount2', Settable: ['source'], Destination: '/mnt2', Type: 'bind' },
        ],
        Linux: { Devices: [{ Name: 'pdev1', Settable: ['path'], Path: '/dev/null' }, { Name: 'pdev2', Settable: ['path'] }] },
        Args: { Name: 'args', Settable: ['value'], Value: ['a'] },
      }),
    );
    const object = (): PluginObject => ({
      Config: structuredClone(config),
      Enabled: false,
      Id: 'x',
      Name: 'p:latest',
      Settings: initEmptySettings(config),
    });

    it('sets env, mount sources, device paths and args', () => {
      const o = object();
      expect(o.Settings.Env).toEqual(['DEBUG=0', 'FIXED=x']);
      const next = applySettings(o, ['DEBUG=1', 'pmount1.source=bar', 'pdev1=/dev/zero', 'args=x y']);
      expect(next.Settings.Env).toEqual(['DEBUG=1', 'FIXED=x']);
      expect(next.Settings.Mounts?.[0]?.Source).toBe('bar');
      expect(next.Config.Mounts?.[0]?.Source).toBe('bar');
      expect(next.Settings.Devices?.[0]?.Path).toBe('/dev/zero');
      expect(next.Config.Linux.Devices?.[0]?.Path).toBe('/dev/zero');
      expect(next.Settings.Args).toEqual(['x', 'y']);
      // The object itself is untouched until the caller commits.
      expect(o.Settings.Env).toEqual(['DEBUG=0', 'FIXED=x']);
    });

    it("refuses with moby's texts, all or nothing", () => {
      const o = object();
      const cases: Array<[string[], string]> = [
        [['pmount2.source=bar'], 'plugin config has no mount source'],
        [['pdev2.path=/dev/x'], 'plugin config has no device path'],
        [['FIXED=1'], '"FIXED" is not settable'],
        [['DEBUG.path=1'], '"DEBUG.path" is not settable'],
        [['nothing=1'], 'setting "nothing" not found in the plugin configuration'],
        [['DEBUG=1', '=x'], errInvalidFormat],
      ];
      for (const [args, text] of cases) {
        expect(() => applySettings(o, args), args.join(' ')).toThrow(text);
      }
      expect(o.Settings.Env).toEqual(['DEBUG=0', 'FIXED=x']);
    });
  });
});

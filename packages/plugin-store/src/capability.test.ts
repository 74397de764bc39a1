import { describe, expect, it } from 'vitest';
import { formatCapability, parseCapability, pluginType } from './index.js';

describe('CapabilityID', () => {
  it('splits the version on the first slash and the prefix on the last dot', () => {
    expect(parseCapability('docker.volumedriver/1.0')).toEqual({ prefix: 'docker', capability: 'volumedriver', version: '1.0' });
    expect(parseCapability('com.example.metrics/2.0/beta')).toEqual({
      prefix: 'com.example',
      capability: 'metrics',
      version: '2.0/beta',
    });
    expect(parseCapability('volumedriver')).toEqual({ prefix: '', capability: 'volumedriver', version: '' });
  });

  it('formats what round-trips and rejects what would not', () => {
    expect(formatCapability(parseCapability('docker.networkdriver/1.0'))).toBe('docker.networkdriver/1.0');
    expect(() => formatCapability({ prefix: 'docker', capability: 'a.b', version: '1.0' })).toThrow(
      'capability "a.b" cannot contain a dot',
    );
    expect(() => formatCapability({ prefix: 'a/b', capability: 'x', version: '1.0' })).toThrow(
      'prefix "a/b" cannot contain a slash',
    );
    expect(() => formatCapability({ prefix: 'docker', capability: 'x/y', version: '1.0' })).toThrow(
      'capability "x/y" cannot contain a slash',
    );
  });

  it('registers handlers under docker.<lower-case capability>/1.0', () => {
    expect(pluginType('VolumeDriver')).toBe('docker.volumedriver/1.0');
  });
});

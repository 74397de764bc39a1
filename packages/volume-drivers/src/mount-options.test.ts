import { describe, expect, it } from 'vitest';
import type { LocalVolumeOptions } from './local-options.js';
import { getAddress, getPassword, maskPassword, resolveMountSource } from './mount-options.js';

describe('mount option helpers (moby TestGetAddress, TestGetPassword)', () => {
  it('finds addr=', () => {
    expect(getAddress('addr=11.11.11.1')).toBe('11.11.11.1');
    expect(getAddress(' ')).toBe('');
    expect(getAddress('addr=')).toBe('');
    expect(getAddress('addr=2001:db8::68')).toBe('2001:db8::68');
  });

  it('finds password=', () => {
    const cases: Record<string, string> = {
      'password=secret': 'secret',
      ' ': '',
      'password=': '',
      'password=Tr0ub4dor&3': 'Tr0ub4dor&3',
      'password=correcthorsebatterystaple': 'correcthorsebatterystaple',
      'username=moby,password=secret': 'secret',
      'username=moby,password=secret,addr=11': 'secret',
      'username=moby,addr=11': '',
    };
    for (const [opts, expected] of Object.entries(cases)) expect(getPassword(opts)).toBe(expected);
  });

  it('masks every occurrence of the password', () => {
    const opts = 'username=moby,password=s3cr3t';
    expect(maskPassword(`mount -o ${opts} failed; password=s3cr3t`, opts)).toBe(
      'mount -o username=moby,password=******** failed; password=********',
    );
    expect(maskPassword('nothing to hide', 'username=moby')).toBe('nothing to hide');
  });
});

describe('resolveMountSource (moby TestVolMountOpts)', () => {
  const resolve = async (host: string): Promise<string> => {
    if (host === 'example.com') return '1.2.3.4';
    throw new Error(`getaddrinfo ENOTFOUND ${host}`);
  };
  const opts = (o: Partial<LocalVolumeOptions>): LocalVolumeOptions => ({
    mountType: '',
    mountOpts: '',
    mountDevice: '',
    quotaSize: 0,
    ...o,
  });

  it.each([
    ['cifs url with space', { mountType: 'cifs', mountDevice: '//1.2.3.4/Program Files' }, '//1.2.3.4/Program Files', ''],
    ['cifs resolve addr', { mountType: 'cifs', mountDevice: '//example.com/Program Files', mountOpts: 'addr=example.com' }, '//example.com/Program Files', 'addr=1.2.3.4'],
    ['cifs resolve device', { mountType: 'cifs', mountDevice: '//example.com/Program Files' }, '//1.2.3.4/Program Files', ''],
    ['cifs resolve device with user', { mountType: 'cifs', mountDevice: '//me@example.com/share' }, '//me@1.2.3.4/share', ''],
    ['nfs dont resolve device', { mountType: 'nfs', mountDevice: '//example.com/Program Files' }, '//example.com/Program Files', ''],
    ['nfs resolve addr', { mountType: 'nfs', mountDevice: '//example.com/Program Files', mountOpts: 'addr=example.com' }, '//example.com/Program Files', 'addr=1.2.3.4'],
    ['tmpfs untouched', { mountType: 'tmpfs', mountDevice: 'tmpfs', mountOpts: 'addr=example.com' }, 'tmpfs', 'addr=example.com'],
  ] as const)('%s', async (_name, o, device, options) => {
    await expect(resolveMountSource(opts(o), resolve)).resolves.toEqual({ device, options });
  });

  it('reports resolution failures and a missing device', async () => {
    await expect(resolveMountSource(opts({ mountType: 'nfs', mountDevice: 'x', mountOpts: 'addr=nowhere' }), resolve)).rejects.toThrow(
      'error resolving passed in network volume address: getaddrinfo ENOTFOUND nowhere',
    );
    await expect(resolveMountSource(opts({ mountType: 'tmpfs' }), resolve)).rejects.toThrow('missing device in volume options');
  });
});

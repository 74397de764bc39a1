import { isIP, isIPv4 } from 'node:net';
import { parseGoUrl } from '@berth/gocompat';
import type { LocalVolumeOptions } from './local-options.js';

/** The value of the first `addr=` in comma-separated mount options, `''` when there is none. */
export function getAddress(mountOpts: string): string {
  return optionValue(mountOpts, 'addr');
}

/** The value of the first `password=` in comma-separated mount options, `''` when there is none. */
export function getPassword(mountOpts: string): string {
  return optionValue(mountOpts, 'password');
}

function optionValue(mountOpts: string, name: string): string {
  const prefix = `${name}=`;
  for (const option of mountOpts.split(',')) if (option.startsWith(prefix)) return option.slice(prefix.length);
  return '';
}

/** Hides the password of `mountOpts` wherever it appears in `text` (mount errors echo options). */
export function maskPassword(text: string, mountOpts: string): string {
  const password = getPassword(mountOpts);
  if (password === '') return text;
  return text.split(`password=${password}`).join('password=********');
}

/** Resolves a host name to one IP address (IPv4 preferred), as Go's `net.ResolveIPAddr("ip", host)`. */
export type ResolveAddress = (host: string) => Promise<string>;

export interface MountSource {
  device: string;
  options: string;
}

/**
 * The device and options actually given to mount (moby's `getMountOptions`): for `nfs` and `cifs`
 * the kernel wants addresses, so an `addr=` host name is resolved, and for `cifs` without one the
 * host of the device URL is.
 */
export async function resolveMountSource(options: LocalVolumeOptions, resolve: ResolveAddress): Promise<MountSource> {
  if (options.mountDevice === '') throw new Error('missing device in volume options');
  const source: MountSource = { device: options.mountDevice, options: options.mountOpts };
  if (options.mountType !== 'nfs' && options.mountType !== 'cifs') return source;

  const addr = getAddress(options.mountOpts);
  if (addr !== '' && !isIPv4(addr)) {
    const ip = await resolveOrWrap(resolve, addr);
    return { ...source, options: options.mountOpts.replace(`addr=${addr}`, `addr=${ip}`) };
  }
  if (options.mountType !== 'cifs') return source;

  let url;
  try {
    url = parseGoUrl(options.mountDevice);
  } catch (err) {
    throw new Error(`error parsing mount device url: ${(err as Error).message}`, { cause: err });
  }
  if (url.host === '' || isIP(url.host) !== 0) return source;
  const ip = await resolveOrWrap(resolve, url.host);
  const device = options.mountDevice;
  return { ...source, device: device.slice(0, url.hostStart) + ip + device.slice(url.hostStart + url.host.length) };
}

async function resolveOrWrap(resolve: ResolveAddress, host: string): Promise<string> {
  try {
    return await resolve(host);
  } catch (err) {
    throw new Error(`error resolving passed in network volume address: ${(err as Error).message}`, { cause: err });
  }
}

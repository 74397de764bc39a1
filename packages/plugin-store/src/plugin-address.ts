import { system, type BerthError } from '@berth/errdefs';

/** Where a plugin listens, from its address URL (`unix://`, `tcp://`, `http://`, `https://`). */
export type PluginTarget =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly https: boolean };

// sun_path holds 108 bytes including the terminating NUL on Linux.
const UNIX_PATH_MAX = 107;
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** The scheme of an address, or `undefined` when it has none (`localhost:8080`). */
export function addressScheme(addr: string): string | undefined {
  return SCHEME.exec(addr)?.[1]?.toLowerCase();
}

/**
 * Parses a plugin address. `tcp://` and `http://` both mean plain HTTP over TCP, `https://` adds
 * TLS; whatever path the URL carries is ignored, as in moby (calls always go to `/<Iface.Method>`).
 */
export function parsePluginAddress(addr: string): PluginTarget {
  const scheme = addressScheme(addr);
  if (scheme === undefined) throw system('Unknown protocol');
  if (scheme === 'unix') {
    const socketPath = addr.slice('unix://'.length);
    if (socketPath === '') throw invalidAddress(addr, 'no socket path');
    if (Buffer.byteLength(socketPath) > UNIX_PATH_MAX) throw system(`unix socket path "${socketPath}" is too long`);
    return { kind: 'unix', socketPath };
  }
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw invalidAddress(addr, `unsupported protocol "${scheme}"`);
  }
  let url: URL;
  try {
    url = new URL(addr);
  } catch {
    throw invalidAddress(addr, 'not a valid URL');
  }
  if (url.hostname === '') throw invalidAddress(addr, 'no host');
  if (scheme === 'tcp' && url.port === '') throw invalidAddress(addr, 'missing port in address');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port);
  return { kind: 'tcp', host, port, https: scheme === 'https' };
}

function invalidAddress(addr: string, why: string): BerthError {
  return system(`invalid plugin address "${addr}": ${why}`);
}

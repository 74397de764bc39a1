import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** moby's default `insecure-registries`: loopback only. */
export const DEFAULT_INSECURE_REGISTRIES: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * Whether a registry `host[:port]` is insecure, as moby's `isSecureIndex` decides: named
 * exactly in the list, or resolving to an address inside one of its CIDRs. Insecure registries
 * are tried over HTTPS without certificate checks, then over plain HTTP.
 */
export async function isInsecureRegistry(hostPort: string, insecure: readonly string[]): Promise<boolean> {
  const cidrs = new BlockList();
  let anyCidr = false;
  for (const entry of insecure) {
    const slash = entry.indexOf('/');
    if (slash < 0) {
      if (entry === hostPort) return true;
      continue;
    }
    const address = entry.slice(0, slash);
    const prefix = Number(entry.slice(slash + 1));
    const family = isIP(address);
    if (family === 0 || !Number.isInteger(prefix)) continue;
    cidrs.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
    anyCidr = true;
  }
  if (!anyCidr) return false;
  const host = hostname(hostPort);
  const literal = isIP(host);
  if (literal !== 0) return cidrs.check(host, literal === 6 ? 'ipv6' : 'ipv4');
  try {
    const addresses = await lookup(host, { all: true });
    return addresses.some((a) => cidrs.check(a.address, a.family === 6 ? 'ipv6' : 'ipv4'));
  } catch {
    return false;
  }
}

/** `host` of `host:port`, `[::1]:5000` ⇒ `::1`. */
export function hostname(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

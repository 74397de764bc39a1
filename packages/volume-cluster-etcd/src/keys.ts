/**
 * The key layout under the cluster's prefix (`/berth` by default):
 *
 *     <prefix>/volumes/<name>              the record (JSON), created once by create-if-absent
 *     <prefix>/refs/<name>/<host>/<ref>    a reference, under the host's lease
 *     <prefix>/removing/<name>             a removal claim (the removing host), under its lease
 *     <prefix>/hosts/<host>                the host's lease id, under that lease
 *
 * Volume names and host names never contain `/`; a reference may (it is the key's last part).
 */
export type ParsedKey =
  | { kind: 'volume'; name: string }
  | { kind: 'ref'; name: string; host: string; ref: string }
  | { kind: 'claim'; name: string }
  | { kind: 'host'; host: string };

export interface KeyRange {
  key: Buffer;
  range_end: Buffer;
}

export class ClusterKeys {
  readonly #prefix: string;

  /** `prefix` without a trailing slash, e.g. `/berth`. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Every key of the cluster: what the volume cache loads and watches. */
  get root(): KeyRange {
    return this.#under('');
  }

  volume(name: string): Buffer {
    return Buffer.from(`${this.#prefix}/volumes/${name}`);
  }

  /** The references of one volume, every host's. */
  refsOf(name: string): KeyRange {
    return this.#under(`refs/${name}/`);
  }

  /** Every reference of every volume. */
  get allRefs(): KeyRange {
    return this.#under('refs/');
  }

  /** Every removal claim. */
  get allClaims(): KeyRange {
    return this.#under('removing/');
  }

  ref(name: string, host: string, ref: string): Buffer {
    return Buffer.from(`${this.#prefix}/refs/${name}/${host}/${ref}`);
  }

  claim(name: string): Buffer {
    return Buffer.from(`${this.#prefix}/removing/${name}`);
  }

  host(host: string): Buffer {
    return Buffer.from(`${this.#prefix}/hosts/${host}`);
  }

  /** What a key under the prefix stands for; `undefined` for anything else. */
  parse(key: Buffer | string): ParsedKey | undefined {
    const text = key.toString();
    if (!text.startsWith(`${this.#prefix}/`)) return undefined;
    const rest = text.slice(this.#prefix.length + 1);
    const slash = rest.indexOf('/');
    if (slash < 0) return undefined;
    const kind = rest.slice(0, slash);
    const tail = rest.slice(slash + 1);
    if (tail === '') return undefined;
    switch (kind) {
      case 'volumes':
        return tail.includes('/') ? undefined : { kind: 'volume', name: tail };
      case 'removing':
        return tail.includes('/') ? undefined : { kind: 'claim', name: tail };
      case 'hosts':
        return tail.includes('/') ? undefined : { kind: 'host', host: tail };
      case 'refs': {
        const [name, host, ...ref] = tail.split('/');
        if (name === undefined || name === '' || host === undefined || host === '' || ref.length === 0) return undefined;
        return { kind: 'ref', name, host, ref: ref.join('/') };
      }
      default:
        return undefined;
    }
  }

  #under(path: string): KeyRange {
    const key = Buffer.from(`${this.#prefix}/${path}`);
    return { key, range_end: prefixEnd(key) };
  }
}

/** The end of the range of every key starting with `prefix` (etcd's `clientv3.GetPrefixRangeEnd`). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  // Every byte is 0xff: to the end of the key space.
  return Buffer.from([0]);
}
